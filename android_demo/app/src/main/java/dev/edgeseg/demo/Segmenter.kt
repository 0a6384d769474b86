package dev.edgeseg.demo

import android.content.res.AssetManager
import android.graphics.Bitmap
import android.os.SystemClock
import java.io.FileInputStream
import java.io.FileNotFoundException
import java.nio.ByteBuffer
import java.nio.ByteOrder
import java.nio.MappedByteBuffer
import java.nio.channels.FileChannel
import org.tensorflow.lite.DataType
import org.tensorflow.lite.Interpreter
import org.tensorflow.lite.Tensor
import org.tensorflow.lite.gpu.CompatibilityList
import org.tensorflow.lite.gpu.GpuDelegate

/** Class ids of one frame, row-major at the model's output resolution, and how long the model ran. */
class Segmentation(val classIds: IntArray, val width: Int, val height: Int, val inferenceMillis: Double)

/**
 * Runs model.tflite on camera frames the way edgeseg.json says: the upright frame stretched to the
 * input size with bilinear filtering, its RGB values written as the input dtype asks, and the argmax
 * over the last axis of the raw output (or, for a labels output, the class ids it holds).
 *
 * Create, use and close it on one thread: the GPU delegate must run on the thread that created it.
 */
class Segmenter(assets: AssetManager, private val contract: ModelContract, val usesGpu: Boolean) : AutoCloseable {
    val threads: Int = Runtime.getRuntime().availableProcessors().coerceIn(1, MAX_THREADS)

    private val input = directBuffer(
        contract.inputHeight * contract.inputWidth * SUPPORTED_CHANNELS,
        contract.inputType,
    )
    private val output = directBuffer(
        contract.outputHeight * contract.outputWidth * contract.outputValuesPerPixel,
        contract.outputType,
    )
    private val pixels = IntArray(contract.inputHeight * contract.inputWidth)

    // What each channel value 0..255 becomes in the input tensor, computed once. For the uint8 input
    // with scale 1 and zero point 0 that edgeseg exports, it is the value itself.
    private val inputLevels = IntArray(256) { value ->
        contract.inputType.integerRange?.let { range -> quantize(value, contract.inputQuantization, range) } ?: value
    }

    private val gpuDelegate: GpuDelegate? = if (usesGpu) createGpuDelegate() else null
    private val interpreter: Interpreter

    init {
        val options = Interpreter.Options().setNumThreads(threads).setUseXNNPACK(true)
        gpuDelegate?.let { options.addDelegate(it) }
        interpreter = try {
            Interpreter(mapModel(assets), options)
        } catch (error: Exception) {
            gpuDelegate?.close()
            throw error
        }
        try {
            checkTensorsMatchContract()
        } catch (error: ContractException) {
            close()
            throw error
        }
    }

    /** Segments an upright ARGB_8888 [frame] of any size. */
    fun segment(frame: Bitmap): Segmentation {
        val scaled = Bitmap.createScaledBitmap(frame, contract.inputWidth, contract.inputHeight, true)
        scaled.getPixels(pixels, 0, contract.inputWidth, 0, 0, contract.inputWidth, contract.inputHeight)
        writeInput()
        output.rewind()
        val start = SystemClock.elapsedRealtimeNanos()
        interpreter.run(input, output)
        val inferenceMillis = (SystemClock.elapsedRealtimeNanos() - start) / 1e6
        val classIds = if (contract.outputIsLabels) storedClassIds() else argmaxClassIds()
        return Segmentation(classIds, contract.outputWidth, contract.outputHeight, inferenceMillis)
    }

    override fun close() {
        interpreter.close()
        gpuDelegate?.close()
    }

    private fun writeInput() {
        input.rewind()
        for (pixel in pixels) {
            writeChannel(inputLevels[(pixel shr 16) and 0xFF])
            writeChannel(inputLevels[(pixel shr 8) and 0xFF])
            writeChannel(inputLevels[pixel and 0xFF])
        }
        input.rewind()
    }

    private fun writeChannel(level: Int) {
        when (contract.inputType) {
            // uint8 levels 128..255 become negative Kotlin bytes with the same bits.
            TensorType.UINT8, TensorType.INT8 -> input.put(level.toByte())
            TensorType.INT16 -> input.putShort(level.toShort())
            TensorType.FLOAT32 -> input.putFloat(level.toFloat())
        }
    }

    private fun storedClassIds(): IntArray =
        IntArray(contract.outputHeight * contract.outputWidth) { pixel -> output.get(pixel).toInt() and 0xFF }

    private fun argmaxClassIds(): IntArray {
        val classes = contract.numClasses
        return IntArray(contract.outputHeight * contract.outputWidth) { pixel ->
            val first = pixel * classes
            var best = 0
            var bestValue = rawOutput(first)
            for (classId in 1 until classes) {
                val value = rawOutput(first + classId)
                // Strictly greater, so a tie keeps the lower class id as numpy's argmax does.
                if (value > bestValue) {
                    best = classId
                    bestValue = value
                }
            }
            best
        }
    }

    /**
     * Output element [index] as stored, without dequantizing: all elements share one scale that is
     * not negative (ModelContract checks it), so the largest stored value is the largest logit.
     */
    private fun rawOutput(index: Int): Float {
        val offset = index * contract.outputType.bytesPerElement
        return when (contract.outputType) {
            TensorType.UINT8 -> (output.get(offset).toInt() and 0xFF).toFloat()
            TensorType.INT8 -> output.get(offset).toFloat()
            TensorType.INT16 -> output.getShort(offset).toFloat()
            TensorType.FLOAT32 -> output.getFloat(offset)
        }
    }

    private fun checkTensorsMatchContract() {
        val expectedInput = intArrayOf(1, contract.inputHeight, contract.inputWidth, SUPPORTED_CHANNELS)
        checkTensor("input", interpreter.getInputTensor(0), expectedInput, contract.inputType)
        val expectedOutput = if (contract.outputIsLabels) {
            intArrayOf(1, contract.outputHeight, contract.outputWidth)
        } else {
            intArrayOf(1, contract.outputHeight, contract.outputWidth, contract.numClasses)
        }
        checkTensor("output", interpreter.getOutputTensor(0), expectedOutput, contract.outputType)
    }

    private fun checkTensor(role: String, tensor: Tensor, expectedShape: IntArray, expectedType: TensorType) {
        if (!tensor.shape().contentEquals(expectedShape) || tensor.dataType() != dataTypeOf(expectedType)) {
            throw ContractException(
                "$MODEL_ASSET does not match $DESCRIPTION_ASSET: its $role is " +
                    "${tensor.dataType()} ${tensor.shape().contentToString()}, the description says " +
                    "${expectedType.jsonName} ${expectedShape.contentToString()}"
            )
        }
    }

    companion object {
        private const val MAX_THREADS = 4

        /** Whether the GPU delegate's compatibility list knows this device's GPU and driver as working. */
        fun isGpuSupportedOnThisDevice(): Boolean =
            CompatibilityList().use { it.isDelegateSupportedOnThisDevice }

        private fun createGpuDelegate(): GpuDelegate =
            CompatibilityList().use { GpuDelegate(it.bestOptionsForThisDevice) }

        /** Maps the model out of the APK without copying it; the asset is stored uncompressed (noCompress). */
        private fun mapModel(assets: AssetManager): MappedByteBuffer {
            val descriptor = try {
                assets.openFd(MODEL_ASSET)
            } catch (error: FileNotFoundException) {
                throw ContractException(
                    "$MODEL_ASSET is not in the app's assets: copy an export in with " +
                        "tools/copy_export_to_android.py and rebuild the app"
                )
            }
            return descriptor.use {
                FileInputStream(it.fileDescriptor).use { stream ->
                    stream.channel.map(FileChannel.MapMode.READ_ONLY, it.startOffset, it.declaredLength)
                }
            }
        }

        private fun directBuffer(elements: Int, type: TensorType): ByteBuffer =
            ByteBuffer.allocateDirect(elements * type.bytesPerElement).order(ByteOrder.nativeOrder())

        private fun dataTypeOf(type: TensorType): DataType = when (type) {
            TensorType.UINT8 -> DataType.UINT8
            TensorType.INT8 -> DataType.INT8
            TensorType.INT16 -> DataType.INT16
            TensorType.FLOAT32 -> DataType.FLOAT32
        }
    }
}

/**
 * value / scale + zeroPoint, rounded half to even (Math.rint, like numpy's round) and clamped to
 * [range]: what edgeseg's own TFLite runner feeds an integer input.
 */
private fun quantize(value: Int, quantization: Quantization, range: IntRange): Int =
    Math.rint(value / quantization.scale + quantization.zeroPoint).toInt().coerceIn(range)
