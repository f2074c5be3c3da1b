/* Live progress of a progress-report export (lms/templates/coordinator/export.html), on
   live-progress.js: the bar and the figures while it waits or is written; when it is ready,
   the download link. */
(function () {
  "use strict";

  function unfinished(state) {
    return state === "queued" || state === "running";
  }

  window.lmsLiveProgress({
    going: unfinished,
    render: function (p, page) {
      var written = p.state === "done" ? p.total : p.done;
      var max = Math.max(p.total, 1);
      if (page.bar) {
        page.bar.max = max;
        page.bar.value = Math.min(written, max);
        page.bar.textContent = p.done + " / " + p.total;
      }
      page.set("done", Number(written).toLocaleString(page.lang));
      page.set("total", Number(p.total).toLocaleString(page.lang));
      page.state(p.state);
      if (p.state === "done") {
        var link = page.root.querySelector('[data-field="download"]');
        if (link && p.download_url) {
          link.setAttribute("href", p.download_url);
        }
        page.set("file_name", p.file_name || "");
      }
      if (p.state === "failed") {
        page.set("error", p.error || "");
      }
      page.show('[data-when="done"]', p.state === "done");
      page.show('[data-when="failed"]', p.state === "failed");
      page.show('[data-when="stale"]', !!p.stale);
      page.show("[data-when-restart]", !!p.stale || p.state === "failed");
      if (!unfinished(p.state)) {
        page.show("[data-while-running]", false);
      }
    }
  });
})();
