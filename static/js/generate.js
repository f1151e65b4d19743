// The generate page submits in place: the form is posted with fetch, a queued job comes
// back as its progress fragment and goes above the earlier results (#results), polled by
// poll.js until it ends; a refusal (400, or 429/503 of the limits) comes back as the errors
// that replace #form-errors, and what was typed or drawn stays. Without this script the
// form posts as usual and the server redirects to the job's page. Loaded after
// mask_editor.js, whose submit handler fills the mask first.
(function () {
  "use strict";
  var form = document.getElementById("generate-form");
  var results = document.getElementById("results");
  if (!form || !results || !window.fetch) {
    return;
  }
  var button = form.querySelector("button[type=submit]");

  function showErrors(element) {
    document.getElementById("form-errors").replaceWith(element);
  }

  function failed(message) {
    var element = document.createElement("div");
    element.id = "form-errors";
    element.className = "form-errors";
    element.setAttribute("role", "alert");
    var list = document.createElement("ul");
    list.className = "errorlist";
    var item = document.createElement("li");
    item.textContent = message;
    list.appendChild(item);
    element.appendChild(list);
    showErrors(element);
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    button.disabled = true;
    fetch(form.action, {
      method: "POST",
      body: new FormData(form),
      credentials: "same-origin",
      headers: { Accept: "text/html", "X-Requested-With": "generate" },
    })
      .then(function (response) {
        return response.text().then(function (html) {
          var answer = new DOMParser().parseFromString(html, "text/html").body;
          var job = answer.querySelector(".job-status[id]");
          var errors = answer.querySelector("#form-errors");
          if (response.ok && job) {
            job = document.adoptNode(job);
            results.prepend(job);
            document.getElementById("form-errors").replaceChildren();
            job.dispatchEvent(new CustomEvent("poll:watch", { bubbles: true }));
          } else if (errors) {
            showErrors(document.adoptNode(errors));
          } else {
            failed("The server answered " + response.status + "; try again.");
          }
        });
      })
      .catch(function () {
        failed("The request did not reach the server; try again.");
      })
      .finally(function () {
        button.disabled = false;
      });
  });
}());
