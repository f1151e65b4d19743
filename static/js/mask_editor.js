// The inpainting mask editor of the generate page: paint over the starting image where it
// is to be drawn again. Brush size, eraser, clear, invert. On submit the mask goes into the
// form's hidden mask_data field as a PNG (white: draw again, black: keep) of the image's
// own size. Plain JavaScript, loaded as a file (the CSP allows no inline script).
(function () {
  "use strict";
  var canvas = document.getElementById("mask-canvas");
  var form = document.getElementById("generate-form");
  if (!canvas || !form) {
    return;
  }
  var context = canvas.getContext("2d");
  var brush = document.getElementById("mask-brush");
  var eraser = document.getElementById("mask-eraser");
  var drawing = false;
  var last = null;
  var painted = false;

  function point(event) {
    var box = canvas.getBoundingClientRect();
    return {
      x: (event.clientX - box.left) * canvas.width / box.width,
      y: (event.clientY - box.top) * canvas.height / box.height
    };
  }

  function stroke(from, to) {
    var scale = canvas.width / canvas.getBoundingClientRect().width;
    context.globalCompositeOperation = eraser.checked ? "destination-out" : "source-over";
    context.strokeStyle = "#fff";
    context.fillStyle = "#fff";
    context.lineCap = "round";
    context.lineJoin = "round";
    context.lineWidth = Number(brush.value) * scale;
    context.beginPath();
    context.moveTo(from.x, from.y);
    context.lineTo(to.x, to.y);
    context.stroke();
    painted = true;
  }

  canvas.addEventListener("pointerdown", function (event) {
    drawing = true;
    last = point(event);
    stroke(last, last);
    canvas.setPointerCapture(event.pointerId);
  });
  canvas.addEventListener("pointermove", function (event) {
    if (!drawing) {
      return;
    }
    var next = point(event);
    stroke(last, next);
    last = next;
  });
  ["pointerup", "pointercancel"].forEach(function (name) {
    canvas.addEventListener(name, function () {
      drawing = false;
    });
  });

  document.getElementById("mask-clear").addEventListener("click", function () {
    context.clearRect(0, 0, canvas.width, canvas.height);
    painted = false;
  });

  document.getElementById("mask-invert").addEventListener("click", function () {
    var pixels = context.getImageData(0, 0, canvas.width, canvas.height);
    var data = pixels.data;
    for (var i = 0; i < data.length; i += 4) {
      var on = data[i + 3] >= 128;
      data[i] = data[i + 1] = data[i + 2] = 255;
      data[i + 3] = on ? 0 : 255;
    }
    context.putImageData(pixels, 0, 0);
    painted = true;
  });

  // The mask as the server takes it: opaque black, with the painted strokes white.
  function maskPng() {
    var out = document.createElement("canvas");
    out.width = canvas.width;
    out.height = canvas.height;
    var outContext = out.getContext("2d");
    outContext.fillStyle = "#000";
    outContext.fillRect(0, 0, out.width, out.height);
    var pixels = context.getImageData(0, 0, canvas.width, canvas.height);
    var result = outContext.getImageData(0, 0, out.width, out.height);
    for (var i = 0; i < pixels.data.length; i += 4) {
      var value = pixels.data[i + 3] >= 128 ? 255 : 0;
      result.data[i] = result.data[i + 1] = result.data[i + 2] = value;
    }
    outContext.putImageData(result, 0, 0);
    return out.toDataURL("image/png");
  }

  form.addEventListener("submit", function () {
    form.elements.mask_data.value = painted ? maskPng() : "";
  });
}());
