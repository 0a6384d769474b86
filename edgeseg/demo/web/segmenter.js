// Runs an edgeseg export with LiteRT.js (@litertjs/core) on the CPU (its XNNPACK WebAssembly build).
//
// Why not loadAndCompile() and Tensor: @litertjs/core 2.5.3 maps only float32, int32 and uint8
// tensors to JS types, and loadAndCompile() throws "Element type INT8 is not supported." while it
// describes the model's signature, so a full-int8 export (int8 logits) never gets to run. The
// runtime itself runs int8 models; this module drives it through the `liteRtWasm` bindings that
// the LiteRt object exposes (loadModel, compileModel, LiteRtTensorBuffer) and reads the output
// straight from WebAssembly memory.
//
// Example:
//   const segmenter = await loadSegmenter({wasmDir: '/node_modules/@litertjs/core/wasm/',
//                                          modelUrl: '/model.tflite', description});
//   const classIds = await segmenter.classIds(rgbPixels);  // Uint8Array [height * width]

import {loadLiteRt} from '@litertjs/core';

// litert::ElementType values (the enum in @litertjs/core's index.d.ts, not exported by the package).
const ELEMENT_TYPES = {1: 'float32', 3: 'uint8', 9: 'int8'};
const TYPED_ARRAYS = {float32: Float32Array, uint8: Uint8Array, int8: Int8Array};

/**
 * Loads the LiteRT.js runtime from `wasmDir`, then compiles the model at `modelUrl`, checking its
 * tensors against `description` (the export's edgeseg.json).
 */
export async function loadSegmenter({wasmDir, modelUrl, description}) {
  const liteRt = await loadLiteRt(wasmDir);
  const response = await fetch(modelUrl);
  if (!response.ok) {
    throw new Error(`${modelUrl}: HTTP ${response.status}`);
  }
  return new Segmenter(liteRt, new Uint8Array(await response.arrayBuffer()), description).compile();
}

class Segmenter {
  constructor(liteRt, modelBytes, description) {
    const wasm = liteRt.liteRtWasm;
    this.wasm = wasm;
    this.environment = liteRt.getDefaultEnvironment().liteRtEnvironment;
    // The model's flatbuffer must stay in WebAssembly memory for the model's lifetime.
    const modelPointer = wasm._malloc(modelBytes.byteLength);
    wasm.HEAPU8.set(modelBytes, modelPointer);
    this.model = wasm.loadModel(this.environment, modelPointer, modelBytes.byteLength);
    this.input = tensorInfo(wasm, this.model.getInputTensorType(0, 0), 'input');
    this.output = tensorInfo(wasm, this.model.getOutputTensorType(0, 0), 'output');
    checkAgainstDescription(this.input, this.output, description);
    // A labels output (edgeseg.json output.kind "labels") is [1, height, width] class ids already.
    this.outputIsLabels = description.output.kind === 'labels';
    this.numClasses = this.output.shape[3];
  }

  async compile() {
    const wasm = this.wasm;
    this.compiled = await wasm.compileModel(this.environment, this.model, {
      accelerator: 'wasm', cpuOptions: {numThreads: wasm.getThreadCount()}, gpuOptions: {}, webNNOptions: {},
    });
    const inputType = rankedTensorType(wasm, this.input);
    this.inputBuffer = wasm.LiteRtTensorBuffer.createManaged(
        this.environment, wasm.LiteRtTensorBufferType.HOST_MEMORY, inputType, this.input.bytes);
    const requirements = this.compiled.getInputBufferRequirements(0, 0);
    wasm.checkTensorBufferCompatible(this.inputBuffer, inputType, requirements);
    requirements.delete();
    inputType.delete();
    return this;
  }

  /** Class ids [height * width] for RGB uint8 pixels [height * width * 3] at the model's input size. */
  async classIds(rgbPixels) {
    const wasm = this.wasm;
    this.writeInput(rgbPixels);
    const [logits, ...extraOutputs] = await this.compiled.run(0, [this.inputBuffer]);
    extraOutputs.forEach((buffer) => buffer.delete());
    try {
      if (logits.offset() !== 0 || logits.packedSize() !== this.output.bytes) {
        throw new Error(`output buffer holds ${logits.packedSize()} bytes at offset ${logits.offset()}; expected ${this.output.bytes} at 0`);
      }
      const pointer = logits.lock(wasm.LiteRtTensorBufferLockMode.READ);
      try {
        const values = new this.output.TypedArray(wasm.HEAPU8.buffer, wasm.HEAPU8.byteOffset + pointer, this.output.count);
        return this.outputIsLabels ? Uint8Array.from(values) : argmaxLastAxis(values, this.numClasses);
      } finally {
        logits.unlock();
      }
    } finally {
      logits.delete();
    }
  }

  writeInput(rgbPixels) {
    const wasm = this.wasm;
    if (rgbPixels.length !== this.input.count) {
      throw new Error(`input has ${rgbPixels.length} values; the model takes ${this.input.count}`);
    }
    const pointer = this.inputBuffer.lock(wasm.LiteRtTensorBufferLockMode.WRITE);
    try {
      new this.input.TypedArray(wasm.HEAPU8.buffer, wasm.HEAPU8.byteOffset + pointer, this.input.count).set(rgbPixels);
    } finally {
      this.inputBuffer.unlock();
    }
  }
}

function tensorInfo(wasm, modelTensorType, role) {
  const elementType = modelTensorType.elementType().value;
  const layout = modelTensorType.layout();
  const dimensions = layout.dimensions();
  // Keras exports keep the batch dimension dynamic (-1); this page runs one frame at a time.
  const shape = Array.from({length: dimensions.size()}, (_, i) => (i === 0 && dimensions.get(i) === -1 ? 1 : dimensions.get(i)));
  dimensions.delete();
  layout.delete();
  modelTensorType.delete();
  const dtype = ELEMENT_TYPES[elementType];
  if (!dtype) {
    throw new Error(`model ${role} has element type ${elementType}; this page runs float32, uint8 and int8 tensors`);
  }
  const count = shape.reduce((product, size) => product * size, 1);
  const TypedArray = TYPED_ARRAYS[dtype];
  return {elementType, dtype, shape, count, bytes: count * TypedArray.BYTES_PER_ELEMENT, TypedArray};
}

// The model's own tensor type has the dynamic batch dimension, which has no byte size; this one
// is built as @litertjs/core's Tensor builds its types, with batch 1.
function rankedTensorType(wasm, info) {
  const dimensions = new wasm.VectorInt32();
  info.shape.forEach((size) => dimensions.push_back(size));
  const layout = wasm.LiteRtLayout.create(dimensions);
  dimensions.delete();
  const type = wasm.LiteRtRankedTensorType.create({value: info.elementType}, layout);
  layout.delete();
  return type;
}

function checkAgainstDescription(input, output, description) {
  // The contract feeds raw 0..255: exact for a uint8 input with scale 1 and zero point 0, and for float.
  const {scale, zero_point: zeroPoint} = description.input.quantization;
  if (!(input.dtype === 'float32' || (input.dtype === 'uint8' && scale === 1 && zeroPoint === 0))) {
    throw new Error(`model input is ${input.dtype} with scale ${scale}, zero point ${zeroPoint}; this page feeds raw 0..255 to uint8 (scale 1, zero point 0) or float32 inputs`);
  }
  const expectedInput = [1, description.input.height, description.input.width, 3];
  if (String(input.shape) !== String(expectedInput) || input.dtype !== description.input.dtype) {
    throw new Error(`model input is ${input.dtype} [${input.shape}]; edgeseg.json says ${description.input.dtype} [${expectedInput}]`);
  }
  if (description.output.kind === 'labels' && output.dtype !== 'uint8') {
    throw new Error(`model output is ${output.dtype} class ids; edgeseg.json output.kind "labels" means uint8`);
  }
  if (String(output.shape) !== String(description.output.shape) || output.dtype !== description.output.dtype) {
    throw new Error(`model output is ${output.dtype} [${output.shape}]; edgeseg.json says ${description.output.dtype} [${description.output.shape}]`);
  }
}

/** The index of the largest value along the last axis; the first one on ties, like numpy's argmax. */
function argmaxLastAxis(values, numClasses) {
  const ids = new Uint8Array(values.length / numClasses);
  for (let pixel = 0, offset = 0; pixel < ids.length; pixel++, offset += numClasses) {
    let best = 0;
    for (let c = 1; c < numClasses; c++) {
      if (values[offset + c] > values[offset + best]) {
        best = c;
      }
    }
    ids[pixel] = best;
  }
  return ids;
}
