/* Labs. The assignment page: a note while "Open lab" starts the learner's lab server. The lab
   page: a progress note until Jupyter has drawn the notebook; "Submit" saves the open
   notebooks first; while the learner's kernel waits for a free one (or a free GPU), their
   place in the queue (the hub's answer, from status.json every 2 s while the tab is visible). */
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

  // The lab page: "Submit" saves the open notebooks in the frame first (Notebook exposes its
  // app to this same-origin page), so what is submitted is what the learner sees. When they
  // cannot be saved, nothing stale is submitted: the learner is told to save.
  var submitForm = document.querySelector("[data-lab-submit]");
  var frame = document.querySelector("iframe.lms-lab-frame");
  var saving = document.querySelector("[data-lab-saving]");
  if (submitForm && frame) {
    submitForm.addEventListener("submit", function (event) {
      var win, doc;
      try {
        win = frame.contentWindow;
        doc = frame.contentDocument;
      } catch (e) {
        return;  // not reachable from here: the server submits what is saved
      }
      event.preventDefault();
      var button = submitForm.querySelector("[type=submit]");
      if (button) { button.disabled = true; }
      saving.textContent = submitForm.getAttribute("data-saving");
      var app = win && win.jupyterapp;
      var saved = app && app.commands.hasCommand("docmanager:save-all")
        ? app.commands.execute("docmanager:save-all")
        : Promise.resolve();
      saved.catch(function () {}).then(function () {
        var dirty = app ? unsavedIn(app) : doc && doc.querySelector(".jp-mod-dirty");
        if (dirty) {
          saving.textContent = submitForm.getAttribute("data-unsaved");
          if (button) { button.disabled = false; }
          return;
        }
        HTMLFormElement.prototype.submit.call(submitForm);
      });
    });
  }

  // Until the notebook is drawn in the frame (Jupyter's own start takes a few seconds on a
  // new lab), a progress note covers the blank frame.
  var loading = document.querySelector("[data-lab-loading]");
  if (loading && frame) {
    var shown = function () {
      try {
        var doc = frame.contentDocument;
        return doc && doc.querySelector(".jp-Notebook .jp-Cell, .jp-DirListing, .jp-FileEditor");
      } catch (e) {
        return true;  // not ours to look into: nothing to wait for
      }
    };
    var started = Date.now();
    var wait = function () {
      if (shown() || Date.now() - started > 60000) {
        loading.hidden = true;
        frame.removeAttribute("aria-busy");
        return;
      }
      window.setTimeout(wait, 150);
    };
    frame.setAttribute("aria-busy", "true");
    wait();
  }

  function unsavedIn(app) {
    var widgets = Array.from(app.shell.widgets ? app.shell.widgets("main") : []);
    if (app.shell.currentWidget) {
      widgets.push(app.shell.currentWidget);
    }
    return widgets.some(function (widget) {
      return widget.context && widget.context.model && widget.context.model.dirty;
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
          var text = line.getAttribute(label).replace("{place}", state.queue_position);
          if (state.estimated_wait_seconds) {
            var minutes = Math.max(1, Math.round(state.estimated_wait_seconds / 60));
            text += " " + line.getAttribute("data-label-estimate").replace("{minutes}", minutes);
          }
          show(text);
        } else {
          show("");
        }
      })
      .catch(function () { show(""); })
      .then(function () { window.setTimeout(poll, 2000); });
  }
  poll();
}());
