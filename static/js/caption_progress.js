// The album page's caption run: poll its status (GET, JSON) while it is queued or running,
// and show it in the <progress> element and the line of text beside it.
(function () {
  "use strict";
  document.querySelectorAll("[data-caption-run]").forEach(function (box) {
    var bar = box.querySelector("progress");
    var text = box.querySelector(".caption-run-text");
    function active() {
      return box.dataset.status === "queued" || box.dataset.status === "running";
    }
    function poll() {
      fetch(box.dataset.captionRun, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) {
          if (!response.ok) {
            throw new Error("status " + response.status);
          }
          return response.json();
        })
        .then(function (run) {
          bar.max = run.total || 1;
          bar.value = run.done;
          text.textContent = run.summary;
          box.dataset.status = run.status;
          if (active()) {
            window.setTimeout(poll, 1000);
          }
        })
        .catch(function () {
          window.setTimeout(poll, 5000);
        });
    }
    if (active()) {
      poll();
    }
  });
})();
