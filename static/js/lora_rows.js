// The generate page's LoRA rows: "Add a LoRA" copies the last row empty, numbered after
// the highest (lora_<n>, weight_<n>); "Remove" takes a row away (the last one is emptied
// instead). How many may be used is the server's rule, as for the API. Plain JavaScript,
// loaded as a file (the CSP allows no inline script).
(function () {
  "use strict";
  var fieldset = document.getElementById("lora-rows");
  if (!fieldset) {
    return;
  }

  function rows() {
    return fieldset.querySelectorAll(".lora-row");
  }

  function empty(row) {
    row.querySelectorAll(".errorlist").forEach(function (list) {
      list.remove();
    });
    row.querySelector("select").value = "";
    row.querySelector("input").value = "1.0";
  }

  function number(row) {
    return Number(row.querySelector("select").name.split("_")[1]);
  }

  document.getElementById("lora-add").addEventListener("click", function () {
    var all = rows();
    var last = all[all.length - 1];
    var next = 0;
    all.forEach(function (row) {
      next = Math.max(next, number(row));
    });
    next += 1;
    var row = last.cloneNode(true);
    row.querySelectorAll("select, input").forEach(function (field) {
      var kind = field.name.split("_")[0];
      field.name = kind + "_" + next;
      field.id = "id_" + kind + "_" + next;
    });
    empty(row);
    last.after(row);
    row.querySelector("select").focus();
  });

  fieldset.addEventListener("click", function (event) {
    var button = event.target.closest(".lora-remove");
    if (!button) {
      return;
    }
    var row = button.closest(".lora-row");
    if (rows().length > 1) {
      row.remove();
    } else {
      empty(row);
    }
  });
}());
