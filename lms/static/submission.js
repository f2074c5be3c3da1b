/* Submission page: while a grader works on it, ask for its state every 2 seconds and reload
   the page when grading ends. Without JavaScript the page has a refresh link instead. */
(function () {
  "use strict";
  var box = document.querySelector("[data-status-url]");
  if (!box) { return; }
  var waiting = ["queued", "running"];
  if (waiting.indexOf(box.getAttribute("data-state")) < 0) { return; }
  var label = box.querySelector("[data-status-label]");
  var url = box.getAttribute("data-status-url");
  var tries = 0;
  var timer = window.setInterval(function () {
    tries += 1;
    if (tries > 900) { window.clearInterval(timer); return; }  /* 30 minutes: give up */
    window.fetch(url, { headers: { "Accept": "application/json" }, credentials: "same-origin" })
      .then(function (response) {
        if (!response.ok) { throw new Error("status " + response.status); }
        return response.json();
      })
      .then(function (data) {
        if (label && data.label && label.textContent !== data.label) {
          label.textContent = data.label;
        }
        if (waiting.indexOf(data.state) < 0) {
          window.clearInterval(timer);
          window.location.reload();
        }
      })
      .catch(function () { /* a network blip: try again at the next tick */ });
  }, 2000);
}());
