// The generate page's size follows the model: choosing a base picks its family's default
// size (SDXL's 1024 x 1024, else the site settings'), which the model select carries in
// data-sizes (generation/forms.py, model_size). The size can be changed after.
(function () {
  "use strict";
  var select = document.querySelector("select[data-sizes]");
  var size = document.getElementById("id_size");
  if (!select || !size) {
    return;
  }
  var sizes = JSON.parse(select.getAttribute("data-sizes"));
  select.addEventListener("change", function () {
    var wanted = sizes[select.value];
    if (!wanted) {
      return;
    }
    if (!size.querySelector('option[value="' + wanted + '"]')) {
      var option = document.createElement("option");
      option.value = wanted;
      option.textContent = wanted.replace("x", " × ");
      size.insertBefore(option, size.firstChild);
    }
    size.value = wanted;
  });
})();
