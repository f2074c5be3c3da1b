/* Keyboard help when grading by hand (lms/templates/instructor/grade_question.html and
   submission.html):
     Alt+ArrowRight / Alt+ArrowLeft  next / previous learner, but not while the focus is in a
                                     field: there the keys stay the browser's and the system's
                                     (Alt/Option+arrow moves by word in a text field);
     Ctrl+Enter (or Cmd+Enter)       save the grading form the focus is in ("Save and next" when
                                     grading question by question).
   After a save the page that follows says so (a flash, or a note in the cell); it is said again
   once the page has loaded, so that screen readers announce it too. */
(function () {
  "use strict";
  var questionForm = document.querySelector("form[data-grading-form]");
  var dirty = false;
  if (questionForm) {
    questionForm.addEventListener("input", function () {
      dirty = true;
    });
    questionForm.addEventListener("submit", function () {
      dirty = false;
    });
  }

  function typingIn(element) {
    if (!element || !element.tagName) {
      return false;
    }
    var tag = element.tagName.toLowerCase();
    return tag === "input" || tag === "textarea" || tag === "select" || element.isContentEditable;
  }

  function go(rel) {
    var link = document.querySelector('a[data-nav="' + rel + '"]');
    if (!link) {
      return false;
    }
    if (dirty && !window.confirm(questionForm.getAttribute("data-confirm-leave") || "")) {
      return true;
    }
    window.location.assign(link.href);
    return true;
  }

  function save(form) {
    var status = form.querySelector("[data-grading-status]");
    if (status) {
      status.textContent = status.getAttribute("data-saving") || "";
    }
    if (form.requestSubmit) {
      form.requestSubmit();
    } else {
      form.submit();
    }
  }

  document.addEventListener("keydown", function (event) {
    if (event.defaultPrevented || event.isComposing) {
      return;
    }
    var arrow = event.key === "ArrowRight" || event.key === "ArrowLeft";
    if (arrow && event.altKey && !event.ctrlKey && !event.metaKey && !event.shiftKey) {
      if (!typingIn(event.target) && go(event.key === "ArrowRight" ? "next" : "prev")) {
        event.preventDefault();
      }
      return;
    }
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey) && !event.altKey) {
      var form = event.target && event.target.closest ? event.target.closest("form.grading-form") : null;
      if (form) {
        event.preventDefault();
        save(form);
      }
    }
  });

  // A live region announces changes, not what it held when the page loaded: the saved note
  // is said again through a hidden live region, filled once the page has settled.
  var notes = document.querySelectorAll(".flash-saved, [data-announce]");
  if (notes.length) {
    var announcer = document.createElement("p");
    announcer.className = "visually-hidden";
    announcer.setAttribute("role", "status");
    announcer.setAttribute("aria-live", "polite");
    announcer.setAttribute("data-grading-announcer", "");
    document.body.appendChild(announcer);
    window.setTimeout(function () {
      announcer.textContent = Array.prototype.map.call(notes, function (note) {
        return note.textContent.trim();
      }).join(" ");
    }, 250);
  }
})();
