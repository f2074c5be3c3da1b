/* Labs. The assignment page: a note while "Open lab" starts the learner's lab server. The lab
   page: while the learner's kernel waits for a free one (or a free GPU), their place in the
   queue (the hub's answer, from status.json every 2 s while the tab is visible). */
(function () {
  "use strict";
  // The assignment page: "Open lab" may take a few seconds (a new lab server): say so.
  var opener = document.querySelector("[data-lab-open]");
  var starting = document.querySelector("[data-lab-starting]");
  if (opener && starting && opener.form) {
    opener.form.addEventListener("submit", function () {
      starting.hidden = false;
      opener.setAttribute("aria-busy", "true");
    });
  }

  var root = document.querySelector("[data-status-url]");
  var line = root && root.querySelector("[data-queue]");
  if (!line || !window.fetch) {
    return;
  }
  var url = root.getAttribute("data-status-url");

  function show(text) {
    if (line.textContent !== text) {
      line.textContent = text;
    }
    line.hidden = !text;
  }

  function poll() {
    if (document.hidden) {
      window.setTimeout(poll, 2000);
      return;
    }
    fetch(url, {credentials: "same-origin", headers: {Accept: "application/json"}})
      .then(function (response) { return response.json(); })
      .then(function (state) {
        if (state.unavailable) {
          show(line.getAttribute("data-label-unavailable"));
        } else if (state.queue_position) {
          var label = state.queue === "gpu" ? "data-label-waiting-gpu" : "data-label-waiting";
          show(line.getAttribute(label).replace("{place}", state.queue_position));
        } else {
          show("");
        }
      })
      .catch(function () { show(""); })
      .then(function () { window.setTimeout(poll, 2000); });
  }
  poll();
}());
