// The dashboard refreshes its figures by itself: every few seconds (data-refresh-seconds) it asks
// the console for the figures alone (data-live-url, the same template the page was drawn with)
// and swaps them in. No reload, no library; a hidden tab does not ask, a failed fetch keeps the
// figures shown and tries again next time.
(function () {
  "use strict";
  function start() {
    var box = document.getElementById("console-live");
    if (!box || !window.fetch) return;
    var url = box.getAttribute("data-live-url");
    var every = parseInt(box.getAttribute("data-refresh-seconds"), 10) || 30;
    function refresh() {
      if (document.hidden) return;
      fetch(url, { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } })
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) {
          if (html !== null) {
            box.innerHTML = html;
            box.setAttribute("data-refreshed", String(Date.now()));
          }
        })
        .catch(function () {});
    }
    window.setInterval(refresh, every * 1000);
    box.consoleRefresh = refresh;  // lets a test (or a person in the devtools) refresh at once
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
