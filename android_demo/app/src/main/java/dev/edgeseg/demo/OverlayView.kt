package dev.edgeseg.demo

import android.content.Context
import android.graphics.Bitmap
import android.graphics.Canvas
import android.graphics.Paint
import android.graphics.RectF
import android.util.AttributeSet
import android.view.View
import kotlin.math.min

/** Mask opacity, about 50%: the class colors show while the camera image stays visible under them. */
private const val MASK_ALPHA = 0x80

/**
 * Draws the latest segmentation mask over the camera preview. The preview is FIT_CENTER: the whole
 * upright frame, scaled uniformly and centered. The model saw that same whole frame, so its mask is
 * stretched over exactly that rectangle.
 */
class OverlayView @JvmOverloads constructor(
    context: Context,
    attrs: AttributeSet? = null,
) : View(context, attrs) {
    // Nearest-neighbour scaling: each mask pixel is one class, and filtering would blend the colors
    // of neighbouring classes into colors that belong to none.
    private val maskPaint = Paint().apply { isFilterBitmap = false }
    private val maskBounds = RectF()
    private var classColors = IntArray(0)
    private var mask: Bitmap? = null
    private var frameWidth = 0
    private var frameHeight = 0

    /** The colors to paint class ids with, from edgeseg.json's `classes[i].color`. */
    fun setClasses(classes: List<SegmentationClass>) {
        classColors = IntArray(classes.size) { (MASK_ALPHA shl 24) or (classes[it].rgb and 0x00FFFFFF) }
    }

    /** Shows [segmentation] over the frame of [frameWidth] x [frameHeight] pixels it was computed from. */
    fun showSegmentation(segmentation: Segmentation, frameWidth: Int, frameHeight: Int) {
        val colors = IntArray(segmentation.classIds.size) { classColors[segmentation.classIds[it]] }
        mask = Bitmap.createBitmap(colors, segmentation.width, segmentation.height, Bitmap.Config.ARGB_8888)
        this.frameWidth = frameWidth
        this.frameHeight = frameHeight
        invalidate()
    }

    override fun onDraw(canvas: Canvas) {
        super.onDraw(canvas)
        val mask = mask ?: return
        val scale = min(width.toFloat() / frameWidth, height.toFloat() / frameHeight)
        val drawnWidth = frameWidth * scale
        val drawnHeight = frameHeight * scale
        maskBounds.set(
            (width - drawnWidth) / 2f,
            (height - drawnHeight) / 2f,
            (width + drawnWidth) / 2f,
            (height + drawnHeight) / 2f,
        )
        canvas.drawBitmap(mask, null, maskBounds, maskPaint)
    }
}
