/* Submission page: while a grader works on it, ask for its state (soon at first, since
   instant feedback usually takes about a second, then every 2 seconds) and reload the page
   when grading ends. Without JavaScript the page has a refresh link instead. */
(function () {
  "use strict";
  var box = document.querySelector("[data-status-url]");
  if (!box) { return; }
  var waiting = ["queued", "running"];
  if (waiting.indexOf(box.getAttribute("data-state")) < 0) { return; }
  var label = box.querySelector("[data-status-label]");
  var url = box.getAttribute("data-status-url");
  var delays = [500, 500, 1000, 1000];  /* then 2000 ms */
  var started = Date.now();

  function next() {
    if (Date.now() - started > 30 * 60 * 1000) { return; }  /* 30 minutes: give up */
    window.setTimeout(ask, delays.length ? delays.shift() : 2000);
  }

  function ask() {
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
          window.location.reload();
        } else {
          next();
        }
      })
      .catch(next);  /* a network blip: try again at the next tick */
  }

  next();
}());
