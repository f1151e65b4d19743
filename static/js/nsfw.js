// NSFW pictures are blurred (CSS class "nsfw") until clicked: the first click reveals one
// (and does not follow its link), a click on a revealed picture outside a link hides it.
document.addEventListener("click", function (event) {
  "use strict";
  var box = event.target.closest(".nsfw");
  if (!box) {
    return;
  }
  if (!box.classList.contains("revealed")) {
    event.preventDefault();
    box.classList.add("revealed");
  } else if (!event.target.closest("a")) {
    box.classList.remove("revealed");
  }
});
