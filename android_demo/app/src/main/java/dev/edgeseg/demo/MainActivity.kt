package dev.edgeseg.demo

import android.Manifest
import android.content.pm.PackageManager
import android.graphics.Bitmap
import android.graphics.Matrix
import android.os.Bundle
import android.os.SystemClock
import android.text.SpannableStringBuilder
import android.text.Spanned
import android.text.style.ForegroundColorSpan
import android.util.Log
import android.view.View
import android.widget.Switch
import android.widget.TextView
import android.widget.Toast
import androidx.activity.ComponentActivity
import androidx.annotation.StringRes
import androidx.activity.result.contract.ActivityResultContracts
import androidx.camera.core.CameraSelector
import androidx.camera.core.ImageAnalysis
import androidx.camera.core.ImageProxy
import androidx.camera.core.Preview
import androidx.camera.core.resolutionselector.AspectRatioStrategy
import androidx.camera.core.resolutionselector.ResolutionSelector
import androidx.camera.lifecycle.ProcessCameraProvider
import androidx.camera.view.PreviewView
import androidx.core.content.ContextCompat
import java.util.concurrent.ExecutorService
import java.util.concurrent.Executors

/**
 * Live camera segmentation: CameraX preview, an ImageAnalysis stream of RGBA frames, and a
 * [Segmenter] whose mask [OverlayView] draws over the preview, with FPS, inference time and a legend.
 */
class MainActivity : ComponentActivity() {
    private lateinit var previewView: PreviewView
    private lateinit var overlayView: OverlayView
    private lateinit var statsView: TextView
    private lateinit var legendView: TextView
    private lateinit var messageView: TextView
    private lateinit var gpuSwitch: Switch
    private lateinit var contract: ModelContract

    // The only thread that creates, runs and closes `segmenter`, as the GPU delegate requires; the
    // analyzer runs here too, so a frame never meets a segmenter that is being replaced.
    private val analysisExecutor: ExecutorService = Executors.newSingleThreadExecutor()
    private var segmenter: Segmenter? = null
    private var imageAnalysis: ImageAnalysis? = null
    private val frameRate = FrameRateMeter()

    // What the switch last asked for, on the main thread: setting the switch back after a GPU
    // failure calls its listener again, and this tells that call apart from a user's tap.
    private var gpuRequested = false

    private val cameraPermissionRequest =
        registerForActivityResult(ActivityResultContracts.RequestPermission()) { granted ->
            if (granted) startCamera() else showMessage(getString(R.string.camera_permission_denied))
        }

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        setContentView(R.layout.activity_main)
        previewView = findViewById(R.id.preview)
        overlayView = findViewById(R.id.overlay)
        statsView = findViewById(R.id.stats)
        legendView = findViewById(R.id.legend)
        messageView = findViewById(R.id.message)
        gpuSwitch = findViewById(R.id.gpu_switch)
        // The mask covers the whole frame the model saw; FIT_CENTER shows that whole frame.
        previewView.scaleType = PreviewView.ScaleType.FIT_CENTER

        contract = try {
            ModelContract.fromAssets(assets)
        } catch (error: ContractException) {
            gpuSwitch.isEnabled = false
            showMessage(error.message.orEmpty())
            return
        }
        overlayView.setClasses(contract.classes)
        legendView.text = legend(contract.classes)
        gpuSwitch.setOnCheckedChangeListener { _, checked -> onGpuSwitched(checked) }
        analysisExecutor.execute { loadSegmenter(useGpu = false) }

        if (ContextCompat.checkSelfPermission(this, Manifest.permission.CAMERA) == PackageManager.PERMISSION_GRANTED) {
            startCamera()
        } else {
            cameraPermissionRequest.launch(Manifest.permission.CAMERA)
        }
    }

    override fun onDestroy() {
        imageAnalysis?.clearAnalyzer()
        analysisExecutor.execute {
            segmenter?.close()
            segmenter = null
        }
        analysisExecutor.shutdown()
        super.onDestroy()
    }

    private fun startCamera() {
        val providerFuture = ProcessCameraProvider.getInstance(this)
        providerFuture.addListener({ bindCamera(providerFuture.get()) }, ContextCompat.getMainExecutor(this))
    }

    private fun bindCamera(provider: ProcessCameraProvider) {
        // One aspect ratio for both streams, so the analysis frame shows what the preview shows and
        // the mask lines up with it.
        val resolutionSelector = ResolutionSelector.Builder()
            .setAspectRatioStrategy(AspectRatioStrategy.RATIO_4_3_FALLBACK_AUTO_STRATEGY)
            .build()
        val preview = Preview.Builder().setResolutionSelector(resolutionSelector).build()
        preview.setSurfaceProvider(previewView.surfaceProvider)
        val analysis = ImageAnalysis.Builder()
            .setResolutionSelector(resolutionSelector)
            // A slow model skips frames instead of queueing them, so the mask stays current.
            .setBackpressureStrategy(ImageAnalysis.STRATEGY_KEEP_ONLY_LATEST)
            .setOutputImageFormat(ImageAnalysis.OUTPUT_IMAGE_FORMAT_RGBA_8888)
            .build()
        analysis.setAnalyzer(analysisExecutor) { image -> analyze(image) }
        try {
            provider.unbindAll()
            provider.bindToLifecycle(this, CameraSelector.DEFAULT_BACK_CAMERA, preview, analysis)
            imageAnalysis = analysis
        } catch (error: IllegalArgumentException) {
            Log.e(TAG, "cannot open the back camera", error)
            showMessage(getString(R.string.no_back_camera))
        }
    }

    /** On analysisExecutor. */
    private fun analyze(image: ImageProxy) {
        val frame = image.use { uprightBitmap(it) }
        val segmenter = segmenter ?: return
        val segmentation = segmenter.segment(frame)
        val framesPerSecond = frameRate.tick()
        val accelerator = if (segmenter.usesGpu) {
            getString(R.string.accelerator_gpu)
        } else {
            getString(R.string.accelerator_cpu, segmenter.threads)
        }
        runOnUiThread {
            overlayView.showSegmentation(segmentation, frame.width, frame.height)
            statsView.text = getString(R.string.stats, framesPerSecond, segmentation.inferenceMillis, accelerator)
        }
    }

    private fun onGpuSwitched(useGpu: Boolean) {
        if (useGpu == gpuRequested) return
        if (useGpu && !Segmenter.isGpuSupportedOnThisDevice()) {
            fallBackToCpu(R.string.gpu_unsupported)
            return
        }
        gpuRequested = useGpu
        analysisExecutor.execute { loadSegmenter(useGpu) }
    }

    /** On analysisExecutor: replaces the segmenter; a model that does not match its description ends the demo. */
    private fun loadSegmenter(useGpu: Boolean) {
        segmenter?.close()
        segmenter = null
        segmenter = try {
            createSegmenter(useGpu)
        } catch (error: ContractException) {
            runOnUiThread { showMessage(error.message.orEmpty()) }
            null
        }
    }

    private fun createSegmenter(useGpu: Boolean): Segmenter {
        if (!useGpu) return Segmenter(assets, contract, usesGpu = false)
        return try {
            Segmenter(assets, contract, usesGpu = true)
        } catch (error: RuntimeException) {
            // The compatibility list approved the device, yet the delegate refused this model
            // (an op or tensor type it cannot run, or a driver failure).
            Log.w(TAG, "GPU delegate failed, running on the CPU", error)
            runOnUiThread { fallBackToCpu(R.string.gpu_failed) }
            Segmenter(assets, contract, usesGpu = false)
        }
    }

    private fun fallBackToCpu(@StringRes reason: Int) {
        gpuRequested = false
        gpuSwitch.isChecked = false
        Toast.makeText(this, reason, Toast.LENGTH_LONG).show()
    }

    private fun showMessage(message: String) {
        messageView.text = message
        messageView.visibility = View.VISIBLE
    }

    /** "■ name" per class, each square in the class color. */
    private fun legend(classes: List<SegmentationClass>): CharSequence {
        val legend = SpannableStringBuilder()
        for (segmentationClass in classes) {
            if (legend.isNotEmpty()) legend.append("   ")
            val swatchStart = legend.length
            legend.append("■")
            legend.setSpan(
                ForegroundColorSpan(segmentationClass.rgb),
                swatchStart,
                legend.length,
                Spanned.SPAN_EXCLUSIVE_EXCLUSIVE,
            )
            legend.append(" ").append(segmentationClass.name)
        }
        return legend
    }

    private companion object {
        const val TAG = "edgeseg"
    }
}

/**
 * The frame as an ARGB_8888 bitmap turned upright: CameraX delivers it as the sensor sees it, with
 * the rotation that makes it upright for the current display orientation.
 */
private fun uprightBitmap(image: ImageProxy): Bitmap {
    val bitmap = image.toBitmap()
    val rotation = image.imageInfo.rotationDegrees
    if (rotation == 0) return bitmap
    val matrix = Matrix().apply { postRotate(rotation.toFloat()) }
    return Bitmap.createBitmap(bitmap, 0, 0, bitmap.width, bitmap.height, matrix, true)
}

/** Frames per second over the last frames, smoothed so the number is readable while it changes. */
private class FrameRateMeter {
    private var lastFrameNanos = 0L
    private var framesPerSecond = 0.0

    /** Records a finished frame; returns the smoothed rate. */
    fun tick(): Double {
        val now = SystemClock.elapsedRealtimeNanos()
        if (lastFrameNanos != 0L) {
            val instantRate = 1e9 / (now - lastFrameNanos)
            framesPerSecond = if (framesPerSecond == 0.0) {
                instantRate
            } else {
                SMOOTHING * framesPerSecond + (1 - SMOOTHING) * instantRate
            }
        }
        lastFrameNanos = now
        return framesPerSecond
    }

    private companion object {
        const val SMOOTHING = 0.9
    }
}
