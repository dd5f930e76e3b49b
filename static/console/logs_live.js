// The log page's "Live" toggle: new lines (filtered as the page is) come on top of the table as
// the console's tail sends them (server-sent events, one rendered row each). Without this script
// the page is the same list, refreshed by hand; the toggle only shows when the script runs.
// The stream is time-limited by the server; the browser reconnects by itself, from the last id.
(function () {
  "use strict";
  function start() {
    var box = document.getElementById("log-live");
    var body = document.querySelector("#log-lines tbody");
    if (!box || !body || !window.EventSource) return;
    var button = document.getElementById("log-live-toggle");
    var status = document.getElementById("log-live-status");
    var url = box.getAttribute("data-tail-url");
    var after = box.getAttribute("data-after") || "0";
    var source = null;
    var added = 0;
    function say(text) { status.textContent = text; }
    function stop() {
      if (source) source.close();
      source = null;
      button.setAttribute("aria-pressed", "false");
      say(added ? added + " new line(s) added" : "");
    }
    function go() {
      var sep = url.indexOf("?") < 0 ? "?" : "&";
      source = new EventSource(url + sep + "after=" + encodeURIComponent(after));
      button.setAttribute("aria-pressed", "true");
      say("Live: waiting for new lines");
      source.addEventListener("log", function (event) {
        after = event.lastEventId || after;
        var empty = body.querySelector("tr.log-empty");
        if (empty) empty.remove();
        body.insertAdjacentHTML("afterbegin", event.data);
        added += 1;
        say("Live: " + added + " new line(s)");
      });
      source.addEventListener("end", function (event) {
        after = event.lastEventId || after;  // the browser reconnects from here by itself
      });
      source.onerror = function () {
        if (source && source.readyState === EventSource.CLOSED) stop();
      };
    }
    button.addEventListener("click", function () {
      if (source) stop(); else go();
    });
    box.hidden = false;
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
