/* The assignment page's upload: a file that is too large, not a notebook or not readable JSON
   is named next to the file field before anything is sent (the server checks again). */
(function () {
  "use strict";
  var form = document.querySelector("form.lms-upload[data-max-bytes]");
  var input = form && form.querySelector("input[type=file]");
  if (!input || !window.FileReader) {
    return;
  }
  // The request carries the files and a little multipart framing.
  var maxBytes = parseInt(form.getAttribute("data-max-bytes"), 10) - 16 * 1024;
  var field = input.closest(".field") || input.parentNode;
  var errorId = input.id + "-error";

  function errorLine() {
    var line = document.getElementById(errorId);
    if (!line) {
      line = document.createElement("p");
      line.className = "error";
      line.id = errorId;
      line.setAttribute("role", "alert");
      field.appendChild(line);
    }
    return line;
  }

  function say(messages) {
    var described = (input.getAttribute("aria-describedby") || "").split(" ").filter(function (id) {
      return id && id !== errorId;
    });
    if (messages.length) {
      errorLine().textContent = messages.join(" ");
      described.push(errorId);
      input.setAttribute("aria-invalid", "true");
      field.classList.add("has-error");
    } else {
      var line = document.getElementById(errorId);
      if (line) {
        line.remove();
      }
      input.setAttribute("aria-invalid", "false");
      field.classList.remove("has-error");
    }
    input.setAttribute("aria-describedby", described.join(" "));
  }

  function message(name, file, extra) {
    return form.getAttribute(name).replace("{file}", file.name).replace("{size}", extra || "");
  }

  function sizeProblems(files) {
    var problems = [];
    var total = 0;
    Array.prototype.forEach.call(files, function (file) {
      total += file.size;
      if (!/\.ipynb$/i.test(file.name)) {
        problems.push(message("data-not-notebook", file));
      } else if (file.size > maxBytes) {
        problems.push(message("data-too-large", file, (file.size / 1048576).toFixed(1)));
      }
    });
    if (!problems.length && total > maxBytes && files.length) {
      problems.push(message("data-too-large", files[0], (total / 1048576).toFixed(1)));
    }
    return problems;
  }

  function readable(file) {
    return new Promise(function (resolve) {
      var reader = new FileReader();
      reader.onload = function () {
        try {
          JSON.parse(reader.result);
          resolve(null);
        } catch (e) {
          resolve(message("data-broken", file));
        }
      };
      reader.onerror = function () { resolve(null); };
      reader.readAsText(file);
    });
  }

  function check() {
    var problems = sizeProblems(input.files);
    say(problems);
    if (problems.length) {
      return Promise.resolve(problems);
    }
    return Promise.all(Array.prototype.map.call(input.files, readable)).then(function (found) {
      var broken = found.filter(Boolean);
      say(broken);
      return broken;
    });
  }

  input.addEventListener("change", check);
  form.addEventListener("submit", function (event) {
    var problems = sizeProblems(input.files);
    if (problems.length) {
      event.preventDefault();
      say(problems);
      input.focus();
    }
  });
}());
