// The live-camera page: camera frame -> the export's contract (edgeseg/demo/contract.py) -> overlay.
//
// Per frame: the camera frame is copied once; that copy is stretched to the model's input size
// (bilinear), fed as RGB uint8, and the argmax class ids are painted in classes[i].color over the
// same copy at 50%, so the overlay always matches the frame it was computed from.
//
// For tests, window.edgeseg holds the last frame's model input (RGB uint8, height*width*3), its
// class ids (uint8, height*width) and a frame counter.

import {loadSegmenter} from './segmenter.js';

const OVERLAY_ALPHA = 0.5;
// FPS and model time are averaged over the last frames: single frames jitter by 10x.
const STATS_WINDOW_FRAMES = 30;

const state = {ready: false, frames: 0, lastInput: null, lastMask: null, error: null, fps: 0, inferenceMs: 0};
window.edgeseg = state;

main().catch(showError);

async function main() {
  const description = await fetchJson('edgeseg.json');
  const segmenter = await loadSegmenter({
    wasmDir: new URL('node_modules/@litertjs/core/wasm/', location.href).href,
    modelUrl: 'model.tflite',
    description,
  });
  showLegend(description.classes);
  setStats('opening the camera...');
  const video = await openCamera();
  state.ready = true;
  await runLoop(video, segmenter, description);
}

async function fetchJson(url) {
  const response = await fetch(url);
  if (!response.ok) {
    throw new Error(`${url}: HTTP ${response.status}`);
  }
  return response.json();
}

async function openCamera() {
  if (!navigator.mediaDevices?.getUserMedia) {
    throw new Error('This browser gives no camera to this page: getUserMedia needs a secure origin. ' +
                    'Open it as http://localhost:PORT (on a phone: adb reverse tcp:PORT tcp:PORT) or over https.');
  }
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({audio: false, video: {facingMode: {ideal: 'environment'}}});
  } catch (error) {
    throw new Error(`The camera could not be opened (${error.name}: ${error.message}).`);
  }
  const video = document.createElement('video');
  video.muted = true;
  video.playsInline = true;  // iOS Safari would otherwise open its fullscreen player
  video.srcObject = stream;
  await video.play();
  return video;
}

async function runLoop(video, segmenter, description) {
  const {height, width} = description.input;
  const frameCanvas = document.createElement('canvas');
  const frameContext = frameCanvas.getContext('2d');
  const inputContext = canvasContext(width, height, {willReadFrequently: true});
  inputContext.imageSmoothingEnabled = true;
  inputContext.imageSmoothingQuality = 'low';  // bilinear, as the contract's cv2.INTER_LINEAR
  const maskContext = canvasContext(width, height);
  const maskImage = maskContext.createImageData(width, height);
  const palette = description.classes.map((entry) => entry.color);
  const view = document.getElementById('view');
  const viewContext = view.getContext('2d');
  const frameTimes = [];
  const inferenceTimes = [];

  for (;;) {
    await nextVideoFrame(video);
    if (frameCanvas.width !== video.videoWidth || frameCanvas.height !== video.videoHeight) {
      frameCanvas.width = view.width = video.videoWidth;  // phones swap them when rotated
      frameCanvas.height = view.height = video.videoHeight;
    }
    frameContext.drawImage(video, 0, 0);
    inputContext.drawImage(frameCanvas, 0, 0, width, height);
    const input = rgbFromRgba(inputContext.getImageData(0, 0, width, height).data);

    const started = performance.now();
    const classIds = await segmenter.classIds(input);
    inferenceTimes.push(performance.now() - started);

    paintClasses(maskImage, classIds, palette);
    maskContext.putImageData(maskImage, 0, 0);
    viewContext.globalAlpha = 1;
    viewContext.drawImage(frameCanvas, 0, 0);
    viewContext.globalAlpha = OVERLAY_ALPHA;
    viewContext.imageSmoothingEnabled = false;  // blocky class boundaries, as the model sees them
    viewContext.drawImage(maskContext.canvas, 0, 0, view.width, view.height);

    frameTimes.push(performance.now());
    if (frameTimes.length > STATS_WINDOW_FRAMES) {
      frameTimes.shift();
      inferenceTimes.shift();
    }
    const seconds = (frameTimes[frameTimes.length - 1] - frameTimes[0]) / 1000;
    state.fps = seconds > 0 ? (frameTimes.length - 1) / seconds : 0;
    state.inferenceMs = inferenceTimes.reduce((sum, ms) => sum + ms, 0) / inferenceTimes.length;
    state.lastInput = input;
    state.lastMask = classIds;
    state.frames += 1;
    setStats(`${state.fps.toFixed(1)} FPS · inference ${state.inferenceMs.toFixed(1)} ms · ${width}×${height} input`);
  }
}

function canvasContext(width, height, options) {
  const canvas = document.createElement('canvas');
  canvas.width = width;
  canvas.height = height;
  return canvas.getContext('2d', options);
}

/** Resolves on the video's next new frame, so no frame is segmented twice. */
function nextVideoFrame(video) {
  return new Promise((resolve) => {
    if ('requestVideoFrameCallback' in video) {
      video.requestVideoFrameCallback(() => resolve());
    } else {
      requestAnimationFrame(() => resolve());
    }
  });
}

function rgbFromRgba(rgba) {
  const rgb = new Uint8Array((rgba.length / 4) * 3);
  for (let source = 0, target = 0; source < rgba.length; source += 4, target += 3) {
    rgb[target] = rgba[source];
    rgb[target + 1] = rgba[source + 1];
    rgb[target + 2] = rgba[source + 2];
  }
  return rgb;
}

function paintClasses(image, classIds, palette) {
  const pixels = image.data;
  for (let i = 0; i < classIds.length; i++) {
    const [red, green, blue] = palette[classIds[i]] ?? [0, 0, 0];
    pixels[4 * i] = red;
    pixels[4 * i + 1] = green;
    pixels[4 * i + 2] = blue;
    pixels[4 * i + 3] = 255;
  }
}

function showLegend(classes) {
  const legend = document.getElementById('legend');
  for (const {name, color} of classes) {
    const item = document.createElement('li');
    const swatch = document.createElement('span');
    swatch.className = 'swatch';
    swatch.style.background = `rgb(${color.join(',')})`;
    item.append(swatch, name);
    legend.append(item);
  }
}

function setStats(text) {
  document.getElementById('stats').textContent = text;
}

function showError(error) {
  state.error = String(error?.message ?? error);
  const box = document.getElementById('error');
  box.textContent = `Error: ${state.error}`;
  box.hidden = false;
  setStats('stopped');
  console.error(error);
}
