// The page Checkout returns to: while Stripe has not confirmed the payment (data-state
// "pending") ask for the status box every 2 seconds and swap it in; stop once it is not pending.
(function () {
  "use strict";
  function start() {
    var main = document.querySelector("[data-status-url]");
    if (!main || !window.fetch) return;
    var url = main.getAttribute("data-status-url");
    function pending() {
      var box = document.getElementById("billing-status");
      return box && box.getAttribute("data-state") === "pending";
    }
    var timer = window.setInterval(function () {
      if (!pending()) { window.clearInterval(timer); return; }
      fetch(url, { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) {
          if (html === null) return;
          var box = document.getElementById("billing-status");
          box.outerHTML = html;
        })
        .catch(function () {});
    }, 2000);
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
