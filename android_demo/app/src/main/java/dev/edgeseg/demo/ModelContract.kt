package dev.edgeseg.demo

import android.content.res.AssetManager
import android.graphics.Color
import java.io.FileNotFoundException
import org.json.JSONException
import org.json.JSONObject

/** The two assets the app loads; tools/copy_export_to_android.py copies both from an export. */
const val MODEL_ASSET = "model.tflite"
const val DESCRIPTION_ASSET = "edgeseg.json"

/** The only edgeseg.json format whose keys this file knows; a later format may change their meaning. */
const val SUPPORTED_FORMAT = "edgeseg/1"

/** Segmenter writes the red, green and blue bytes of each pixel in this order. */
const val SUPPORTED_COLOR_ORDER = "RGB"
const val SUPPORTED_CHANNELS = 3

/** Segmenter takes the argmax of a logits output [1, h, w, classes]. */
const val LOGITS_OUTPUT_KIND = "logits"

/** A labels output [1, h, w] (uint8) holds each pixel's class id already (export: {output: labels}). */
const val LABELS_OUTPUT_KIND = "labels"

/**
 * A tensor element type as edgeseg.json names it (numpy's dtype names): its size in bytes and, for
 * the integer types, the range a quantized input value is clamped to.
 */
enum class TensorType(val jsonName: String, val bytesPerElement: Int, val integerRange: IntRange?) {
    UINT8("uint8", 1, 0..255),
    INT8("int8", 1, -128..127),
    INT16("int16", 2, -32768..32767),
    FLOAT32("float32", 4, null),
}

/** real value = scale * (stored value - zeroPoint), as in the .tflite. */
data class Quantization(val scale: Double, val zeroPoint: Int)

/** One class of the mask and the legend. [rgb] is opaque; the overlay adds its own transparency. */
data class SegmentationClass(val id: Int, val name: String, val rgb: Int)

/** edgeseg.json or model.tflite is missing, malformed, or describes a model this app cannot run. */
class ContractException(message: String) : Exception(message)

/**
 * What edgeseg.json says about feeding the model and reading its output.
 *
 * Every read of edgeseg.json is in this file, with literal keys, so that
 * tests/unit/test_android_demo.py can check each key against a real export and
 * `edgeseg.demo.android.copy_export_to_app` can refuse an export the app could not read.
 */
data class ModelContract(
    val inputHeight: Int,
    val inputWidth: Int,
    val inputType: TensorType,
    val inputQuantization: Quantization,
    val outputHeight: Int,
    val outputWidth: Int,
    val outputType: TensorType,
    val outputQuantization: Quantization,
    val outputIsLabels: Boolean,
    val classes: List<SegmentationClass>,
) {
    val numClasses: Int get() = classes.size

    /** Output elements per pixel: one class id, or one logit per class. */
    val outputValuesPerPixel: Int get() = if (outputIsLabels) 1 else numClasses

    companion object {
        /** Reads and checks edgeseg.json from the app's assets. */
        fun fromAssets(assets: AssetManager): ModelContract {
            val text = try {
                assets.open(DESCRIPTION_ASSET).bufferedReader().use { it.readText() }
            } catch (error: FileNotFoundException) {
                throw ContractException(
                    "$DESCRIPTION_ASSET is not in the app's assets: copy an export in with " +
                        "tools/copy_export_to_android.py and rebuild the app"
                )
            }
            return try {
                parse(text)
            } catch (error: JSONException) {
                throw ContractException("$DESCRIPTION_ASSET: ${error.message}")
            }
        }

        /** The contract in edgeseg.json [text]; throws ContractException for anything the app cannot run. */
        fun parse(text: String): ModelContract {
            val json = JSONObject(text)
            val format = json.getString("format")
            ensure(format == SUPPORTED_FORMAT) { "format must be $SUPPORTED_FORMAT. Received: $format" }

            val input = json.getJSONObject("input")
            val channels = input.getInt("channels")
            ensure(channels == SUPPORTED_CHANNELS) {
                "input.channels must be $SUPPORTED_CHANNELS. Received: $channels"
            }
            val colorOrder = input.getString("color_order")
            ensure(colorOrder == SUPPORTED_COLOR_ORDER) {
                "input.color_order must be $SUPPORTED_COLOR_ORDER. Received: $colorOrder"
            }
            val inputType = tensorType(input.getString("dtype"), "input.dtype")
            val inputQuantizationJson = input.getJSONObject("quantization")
            val inputQuantization = Quantization(
                inputQuantizationJson.getDouble("scale"),
                inputQuantizationJson.getInt("zero_point"),
            )
            // An integer input is written as value / scale + zero_point, which needs a positive scale.
            ensure(inputType.integerRange == null || inputQuantization.scale > 0) {
                "input.quantization.scale must be > 0 for a ${inputType.jsonName} input. " +
                    "Received: ${inputQuantization.scale}"
            }

            val output = json.getJSONObject("output")
            val kind = output.getString("kind")
            ensure(kind == LOGITS_OUTPUT_KIND || kind == LABELS_OUTPUT_KIND) {
                "output.kind must be $LOGITS_OUTPUT_KIND or $LABELS_OUTPUT_KIND. Received: $kind"
            }
            val outputIsLabels = kind == LABELS_OUTPUT_KIND
            val shape = output.getJSONArray("shape")
            ensure(shape.length() == (if (outputIsLabels) 3 else 4) && shape.getInt(0) == 1) {
                "output.shape must be " + (if (outputIsLabels) "[1, height, width]" else "[1, height, width, classes]") +
                    " for $kind. Received: $shape"
            }
            val outputType = tensorType(output.getString("dtype"), "output.dtype")
            ensure(!outputIsLabels || outputType == TensorType.UINT8) {
                "output.dtype must be uint8 for labels. Received: ${outputType.jsonName}"
            }
            val outputQuantizationJson = output.getJSONObject("quantization")
            val outputQuantization = Quantization(
                outputQuantizationJson.getDouble("scale"),
                outputQuantizationJson.getInt("zero_point"),
            )
            // Segmenter takes the argmax of the raw integers. That picks the largest logit only while
            // the scale is not negative; a negative one would reverse the order.
            ensure(outputQuantization.scale >= 0) {
                "output.quantization.scale must be >= 0. Received: ${outputQuantization.scale}"
            }

            val classEntries = json.getJSONArray("classes")
            val classes = (0 until classEntries.length()).map { index ->
                val entry = classEntries.getJSONObject(index)
                val id = entry.getInt("id")
                ensure(id == index) { "classes[$index].id must be $index, the argmax index. Received: $id" }
                val color = entry.getJSONArray("color")
                val rgb = Color.rgb(color.getInt(0), color.getInt(1), color.getInt(2))
                SegmentationClass(id, entry.getString("name"), rgb)
            }
            ensure(outputIsLabels || shape.getInt(3) == classes.size) {
                "output.shape has ${shape.getInt(3)} classes but classes lists ${classes.size}. Received: $shape"
            }

            return ModelContract(
                inputHeight = input.getInt("height"),
                inputWidth = input.getInt("width"),
                inputType = inputType,
                inputQuantization = inputQuantization,
                outputHeight = shape.getInt(1),
                outputWidth = shape.getInt(2),
                outputType = outputType,
                outputQuantization = outputQuantization,
                outputIsLabels = outputIsLabels,
                classes = classes,
            )
        }

        private fun tensorType(name: String, key: String): TensorType =
            TensorType.entries.firstOrNull { it.jsonName == name } ?: throw ContractException(
                "$DESCRIPTION_ASSET: $key must be one of ${TensorType.entries.joinToString { it.jsonName }}. " +
                    "Received: $name"
            )

        private inline fun ensure(condition: Boolean, message: () -> String) {
            if (!condition) throw ContractException("$DESCRIPTION_ASSET: ${message()}")
        }
    }
}
