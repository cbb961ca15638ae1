"""One self-contained HTML page to look at CAMs: no server, no network, one file to send.

Every image, map and box is inlined (JPEG images, 8-bit greyscale PNG maps coloured in the page
with the jet colormap), so 200 images at 224 px with three methods and two classes stay well under
50 MB. The page: a thumbnail grid; the chosen image large with its map over it; a method switch,
a class toggle, an opacity slider, DT Grad-CAM's boxes and the known lesion region on / off; the
probabilities, and when the run is calibrated the uncertainty and the prediction set. Keys: left /
right = image, up / down = method, c = class, b = boxes, r = region, [ / ] = opacity. The state is
kept in the address (``#image=3&method=gradcampp&class=1&opacity=0.5``) so a view can be shared
and a test can open one.
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from breastcam.errors import DataError


def _uri(kind: str, data: bytes) -> str:
    return f"data:image/{kind};base64," + base64.b64encode(data).decode("ascii")


def _jpeg(rgb: np.ndarray, quality: int = 90) -> str:
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise DataError("could not encode an image for the viewer")
    return _uri("jpeg", buf.tobytes())


def _png_grey(values01: np.ndarray) -> str:
    u8 = np.clip(np.rint(np.nan_to_num(np.asarray(values01, np.float32)) * 255.0), 0, 255).astype(np.uint8)
    ok, buf = cv2.imencode(".png", u8, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    if not ok:
        raise DataError("could not encode a map for the viewer")
    return _uri("png", buf.tobytes())


def viewer_payload(items: Sequence, methods: Sequence[str], class_names: Sequence[str]) -> dict:
    """The JSON the page reads: images, maps and facts (see :class:`breastcam.explain.viewer_data.ViewerItem`)."""
    out = []
    for item in items:
        out.append({
            "name": item.name,
            "image": _jpeg(item.image),
            "size": [int(item.image.shape[1]), int(item.image.shape[0])],
            "probabilities": [round(float(p), 6) for p in item.probabilities],
            "target": int(item.target),
            "uncertainty": None if item.uncertainty is None else round(float(item.uncertainty), 6),
            "prediction_set": item.prediction_set,
            "truth": item.truth,
            "maps": {m: {str(c): _png_grey(v) for c, v in per.items()} for m, per in item.maps.items()},
            "boxes": {m: b for m, b in item.boxes.items()},
            "mask": None if item.mask is None else _png_grey(item.mask.astype(np.float32)),
        })
    return {"methods": list(methods), "classes": [str(c) for c in class_names], "images": out}


def write_viewer(path: str | Path, items: Sequence, methods: Sequence[str], class_names: Sequence[str], *,
                 title: str = "breastcam CAM viewer", note: str = "") -> Path:
    """Write the page to ``path``; returns it."""
    if not items:
        raise DataError("the viewer needs at least one image")
    payload = json.dumps(viewer_payload(items, methods, class_names), separators=(",", ":"))
    page = (_PAGE.replace("__TITLE__", html.escape(title)).replace("__NOTE__", html.escape(note))
            .replace("__DATA__", payload.replace("</", "<\\/")))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path


_PAGE = r"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>__TITLE__</title>
<style>
body{font-family:system-ui,sans-serif;margin:0;display:flex;height:100vh;color:#222}
#grid{width:260px;overflow-y:auto;border-right:1px solid #ccc;padding:6px;box-sizing:border-box}
#grid img{width:72px;height:72px;object-fit:cover;margin:2px;border:3px solid transparent;cursor:pointer}
#grid img.on{border-color:#d33}
main{flex:1;padding:10px 16px;overflow:auto}
#bar button{margin:2px;padding:4px 8px;border:1px solid #888;background:#f4f4f4;cursor:pointer}
#bar button.on{background:#333;color:#fff}
#view{display:flex;gap:18px;align-items:flex-start;margin-top:8px}
canvas{border:1px solid #999;image-rendering:auto}
table{border-collapse:collapse;font-size:14px}td,th{padding:2px 8px;border-bottom:1px solid #ddd;text-align:left}
.bar{display:inline-block;height:10px;background:#4a7}
small{color:#666}
</style></head><body>
<nav id="grid" aria-label="images"></nav>
<main id="main">
<h1 style="font-size:18px;margin:0">__TITLE__</h1><small>__NOTE__</small>
<div id="bar"><span id="methods"></span> | class: <span id="classes"></span> |
<label>opacity <input id="opacity" type="range" min="0" max="1" step="0.05" value="0.5"></label>
<label><input id="boxes" type="checkbox" checked> boxes</label>
<label><input id="region" type="checkbox" checked> known region</label></div>
<div id="view"><canvas id="canvas" width="448" height="448"></canvas>
<div><h2 id="name" style="font-size:16px"></h2><p id="caption"></p><table id="facts"></table>
<p><small>keys: &larr;/&rarr; image, &uarr;/&darr; method, c class, b boxes, r region, [ ] opacity</small></p></div></div>
</main>
<script id="data" type="application/json">__DATA__</script>
<script>
const D = JSON.parse(document.getElementById('data').textContent);
const S = {image: 0, method: D.methods[0], cls: null, opacity: 0.5, boxes: true, region: true};
const cache = {};
function load(src) {
  if (!cache[src]) cache[src] = new Promise(ok => { const im = new Image(); im.onload = () => ok(im); im.src = src; });
  return cache[src];
}
function jet(v) {  // the jet colormap, v in [0, 1]
  const c = x => Math.max(0, Math.min(1, x));
  return [c(1.5 - Math.abs(4 * v - 3)), c(1.5 - Math.abs(4 * v - 2)), c(1.5 - Math.abs(4 * v - 1))].map(x => Math.round(255 * x));
}
const LUT = Array.from({length: 256}, (_, i) => jet(i / 255));
function readHash() {
  const h = new URLSearchParams(location.hash.slice(1));
  if (h.has('image')) S.image = Math.max(0, Math.min(D.images.length - 1, parseInt(h.get('image')) || 0));
  if (h.has('method') && D.methods.includes(h.get('method'))) S.method = h.get('method');
  if (h.has('class')) S.cls = parseInt(h.get('class'));
  if (h.has('opacity')) S.opacity = parseFloat(h.get('opacity'));
}
function writeHash() {
  history.replaceState(null, '', '#image=' + S.image + '&method=' + S.method + '&class=' + S.cls + '&opacity=' + S.opacity);
}
function classesOf(img) { return Object.keys(img.maps[S.method] || {}).map(Number); }
function buttons(el, values, current, label, pick) {
  el.innerHTML = '';
  values.forEach(v => {
    const b = document.createElement('button');
    b.textContent = label(v); b.className = v === current ? 'on' : ''; b.dataset.value = v;
    b.onclick = () => { pick(v); draw(); }; el.appendChild(b);
  });
}
async function draw() {
  const img = D.images[S.image];
  const have = classesOf(img);
  if (!have.includes(S.cls)) S.cls = have.includes(img.target) ? img.target : have[0];
  const main = document.getElementById('main');
  main.dataset.image = S.image; main.dataset.method = S.method; main.dataset.class = S.cls;
  document.querySelectorAll('#grid img').forEach((t, i) => t.className = i === S.image ? 'on' : '');
  buttons(document.getElementById('methods'), D.methods, S.method, v => v, v => S.method = v);
  buttons(document.getElementById('classes'), have, S.cls, v => D.classes[v], v => S.cls = v);
  document.getElementById('opacity').value = S.opacity;
  document.getElementById('name').textContent = img.name;
  document.getElementById('caption').textContent = S.method + ' map for class ' + D.classes[S.cls] +
    ' (image ' + (S.image + 1) + ' of ' + D.images.length + ')';
  const rows = D.classes.map((c, k) => '<tr><td>' + c + (k === img.target ? ' (predicted)' : '') + '</td><td>' +
    img.probabilities[k].toFixed(3) + '</td><td><span class="bar" style="width:' + Math.round(120 * img.probabilities[k]) + 'px"></span></td></tr>');
  if (img.truth !== null) rows.push('<tr><th>truth</th><td colspan=2>' + img.truth + '</td></tr>');
  if (img.uncertainty !== null) rows.push('<tr><th>uncertainty</th><td colspan=2>' + img.uncertainty.toFixed(3) + ' nats</td></tr>');
  if (img.prediction_set !== null) rows.push('<tr><th>prediction set</th><td colspan=2>{' + img.prediction_set.map(k => D.classes[k]).join(', ') + '}</td></tr>');
  document.getElementById('facts').innerHTML = rows.join('');
  writeHash();
  const cv = document.getElementById('canvas'), ctx = cv.getContext('2d');
  const W = cv.width, H = Math.round(cv.width * img.size[1] / img.size[0]); cv.height = H;
  const base = await load(img.image);
  ctx.globalAlpha = 1; ctx.drawImage(base, 0, 0, W, H);
  const src = (img.maps[S.method] || {})[S.cls];
  if (src) {
    const m = await load(src), off = document.createElement('canvas');
    off.width = m.width; off.height = m.height;
    const o = off.getContext('2d'); o.drawImage(m, 0, 0);
    const px = o.getImageData(0, 0, m.width, m.height);
    for (let i = 0; i < px.data.length; i += 4) { const c = LUT[px.data[i]]; px.data[i] = c[0]; px.data[i + 1] = c[1]; px.data[i + 2] = c[2]; px.data[i + 3] = 255; }
    o.putImageData(px, 0, 0);
    ctx.globalAlpha = S.opacity; ctx.drawImage(off, 0, 0, W, H); ctx.globalAlpha = 1;
  }
  const sx = W / img.size[0], sy = H / img.size[1];
  if (S.boxes && img.boxes[S.method]) {
    ctx.strokeStyle = '#fff'; ctx.lineWidth = 2;
    img.boxes[S.method].forEach(b => ctx.strokeRect(b[0] * sx, b[1] * sy, b[2] * sx, b[3] * sy));
  }
  if (S.region && img.mask) {
    const m = await load(img.mask), off = document.createElement('canvas');
    off.width = m.width; off.height = m.height;
    const o = off.getContext('2d'); o.drawImage(m, 0, 0);
    const px = o.getImageData(0, 0, m.width, m.height), out = o.createImageData(m.width, m.height);
    const inside = (x, y) => x >= 0 && y >= 0 && x < m.width && y < m.height && px.data[4 * (y * m.width + x)] > 127;
    for (let y = 0; y < m.height; y++) for (let x = 0; x < m.width; x++) {
      if (inside(x, y) && !(inside(x - 1, y) && inside(x + 1, y) && inside(x, y - 1) && inside(x, y + 1))) {
        const j = 4 * (y * m.width + x); out.data[j] = 0; out.data[j + 1] = 255; out.data[j + 2] = 0; out.data[j + 3] = 255;
      }
    }
    o.putImageData(out, 0, 0); ctx.drawImage(off, 0, 0, W, H);
  }
  main.dataset.drawn = 'yes';
}
function init() {
  readHash();
  const grid = document.getElementById('grid');
  D.images.forEach((img, i) => {
    const t = document.createElement('img'); t.src = img.image; t.alt = img.name; t.title = img.name;
    t.onclick = () => { S.image = i; draw(); }; grid.appendChild(t);
  });
  document.getElementById('opacity').oninput = e => { S.opacity = parseFloat(e.target.value); draw(); };
  document.getElementById('boxes').onchange = e => { S.boxes = e.target.checked; draw(); };
  document.getElementById('region').onchange = e => { S.region = e.target.checked; draw(); };
  document.addEventListener('keydown', e => {
    const n = D.images.length, k = D.methods.indexOf(S.method);
    if (e.key === 'ArrowRight') S.image = (S.image + 1) % n;
    else if (e.key === 'ArrowLeft') S.image = (S.image + n - 1) % n;
    else if (e.key === 'ArrowDown') S.method = D.methods[(k + 1) % D.methods.length];
    else if (e.key === 'ArrowUp') S.method = D.methods[(k + D.methods.length - 1) % D.methods.length];
    else if (e.key === 'c') { const h = classesOf(D.images[S.image]); S.cls = h[(h.indexOf(S.cls) + 1) % h.length]; }
    else if (e.key === 'b') { S.boxes = !S.boxes; document.getElementById('boxes').checked = S.boxes; }
    else if (e.key === 'r') { S.region = !S.region; document.getElementById('region').checked = S.region; }
    else if (e.key === '[') S.opacity = Math.max(0, S.opacity - 0.1);
    else if (e.key === ']') S.opacity = Math.min(1, S.opacity + 0.1);
    else return;
    e.preventDefault(); draw();
  });
  window.addEventListener('hashchange', () => { readHash(); draw(); });
  draw();
}
init();
</script></body></html>
"""
