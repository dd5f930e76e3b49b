// The console's monitor form: only the chosen kind's settings are shown (every kind's fields are
// in the page, so it works without this script too), tags are edited as chips (the text field
// stays the truth: "a, b, c"), assertions are checked line by line as they are typed, and
// "Check now" shows its result on the page.
(function () {
  "use strict";

  function showKind() {
    var select = document.getElementById("id_kind");
    var sets = document.querySelectorAll("fieldset.kind-fields");
    if (!select || select.tagName !== "SELECT") return;  // a monitor's kind is fixed once made
    sets.forEach(function (set) {
      var match = set.classList.contains("kind-" + select.value);
      set.hidden = !match;
    });
  }

  function chips(input) {
    var box = document.createElement("div");
    box.className = "chips";
    var entry = document.createElement("input");
    entry.type = "text";
    entry.setAttribute("aria-label", "Add a tag");
    entry.placeholder = "add a tag, Enter";
    input.type = "hidden";
    input.parentNode.insertBefore(box, input);
    function values() {
      return input.value.split(",").map(function (t) { return t.trim(); }).filter(Boolean);
    }
    function draw() {
      box.querySelectorAll(".chip").forEach(function (c) { c.remove(); });
      values().forEach(function (tag) {
        var chip = document.createElement("span");
        chip.className = "chip";
        chip.textContent = tag;
        var remove = document.createElement("button");
        remove.type = "button";
        remove.textContent = "\u00d7";
        remove.setAttribute("aria-label", "Remove tag " + tag);
        remove.addEventListener("click", function () {
          input.value = values().filter(function (t) { return t !== tag; }).join(", ");
          draw();
        });
        chip.appendChild(remove);
        box.insertBefore(chip, entry);
      });
    }
    function add() {
      var tag = entry.value.replace(/,/g, "").trim();
      if (tag && values().indexOf(tag) === -1) {
        input.value = values().concat([tag]).join(", ");
      }
      entry.value = "";
      draw();
    }
    entry.addEventListener("keydown", function (e) {
      if (e.key === "Enter" || e.key === ",") { e.preventDefault(); add(); }
      if (e.key === "Backspace" && !entry.value) {
        input.value = values().slice(0, -1).join(", ");
        draw();
      }
    });
    entry.addEventListener("blur", add);
    box.appendChild(entry);
    draw();
  }

  // A line that cannot be an assertion (subject, operator, value) is flagged as it is typed;
  // the server's parser has the last word when the form is saved.
  var ASSERTION = /^\s*(status|response_time|body|cert_expires_in|header\.\S+|json\S*)\s+((not\s+)?exists\s*|(==|!=|<=|>=|<|>|(not\s+)?contains|matches|in)\s+\S.*)$/;
  function assertionsCheck(area) {
    var note = document.createElement("p");
    note.className = "console-inline-error";
    note.id = area.id + "-inline";
    note.setAttribute("aria-live", "polite");
    area.setAttribute("aria-describedby", note.id);
    area.parentNode.appendChild(note);
    function check() {
      var bad = [];
      area.value.split("\n").forEach(function (line, i) {
        if (line.trim() && !ASSERTION.test(line)) bad.push(i + 1);
      });
      note.textContent = bad.length
        ? "Line " + bad.join(", ") + " does not read as <subject> <operator> <value>."
        : "";
    }
    area.addEventListener("input", check);
    check();
  }

  function checkNow(button) {
    button.addEventListener("click", function (e) {
      var form = button.form;
      if (!window.fetch || !form) return;
      e.preventDefault();
      var out = document.getElementById("check-now-result");
      out.textContent = "Checking\u2026";
      fetch(form.action, {
        method: "POST",
        body: new FormData(form),
        credentials: "same-origin",
        headers: { "X-Requested-With": "fetch" },
      })
        .then(function (r) { return r.text(); })
        .then(function (html) { out.innerHTML = html; })
        .catch(function () { out.textContent = "The check could not be started."; });
    });
  }

  function start() {
    var select = document.getElementById("id_kind");
    if (select) { select.addEventListener("change", showKind); showKind(); }
    document.querySelectorAll("input[data-chips]").forEach(chips);
    var area = document.getElementById("id_cfg_http_assertions");
    if (area) assertionsCheck(area);
    var button = document.getElementById("check-now-button");
    if (button) checkNow(button);
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
