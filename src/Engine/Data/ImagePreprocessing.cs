namespace Engine.Data;

/// <summary>
/// Turns raw 8-bit grey pixels into network input of any canvas size: the image centred on the canvas, every pixel
/// scaled to [0, 1] and normalised as <c>(v / 255 - mean) / std</c>, the border the normalised zero
/// (docs/file-formats.md, "Input preprocessing"). <see cref="MnistPreprocessing"/> is the 32 x 32 case.
/// </summary>
public static class ImagePreprocessing
{
    /// <summary>
    /// Writes one image into a canvasHeight x canvasWidth canvas:
    /// <c>destination[(top + r) * canvasWidth + left + c] = (pixels[r * cols + c] / 255f - mean) / std</c> with
    /// <c>top = (canvasHeight - rows) / 2 + shiftY</c> and <c>left = (canvasWidth - cols) / 2 + shiftX</c>; every
    /// other cell is the background <c>(0 - mean) / std</c>. Image pixels that a shift moves off the canvas are
    /// dropped.
    /// </summary>
    /// <param name="pixels">The image, <paramref name="rows"/> x <paramref name="cols"/> bytes, row-major.</param>
    /// <param name="rows">Image height, 1 to <paramref name="canvasHeight"/>.</param>
    /// <param name="cols">Image width, 1 to <paramref name="canvasWidth"/>.</param>
    /// <param name="destination">The canvas, exactly canvasHeight x canvasWidth floats, row-major; every element is written.</param>
    /// <param name="canvasHeight">Rows of the canvas (the model's input height).</param>
    /// <param name="canvasWidth">Columns of the canvas (the model's input width).</param>
    /// <param name="mean">Subtracted after scaling to [0, 1]; 0 for none.</param>
    /// <param name="std">Divided by after subtracting the mean; positive, 1 for none.</param>
    /// <param name="shiftX">Columns to move the image right (negative: left), for augmentation.</param>
    /// <param name="shiftY">Rows to move the image down (negative: up), for augmentation.</param>
    public static void WriteImage(
        ReadOnlySpan<byte> pixels, int rows, int cols, Span<float> destination, int canvasHeight, int canvasWidth,
        float mean, float std, int shiftX = 0, int shiftY = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(rows);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(cols);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(canvasHeight);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(canvasWidth);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(rows, canvasHeight);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(cols, canvasWidth);
        if (pixels.Length != rows * cols)
        {
            throw new ArgumentException(
                $"a {rows} x {cols} image has {rows * cols} pixels, but {pixels.Length} were given.", nameof(pixels));
        }
        if (destination.Length != (long)canvasHeight * canvasWidth)
        {
            throw new ArgumentException(
                $"the canvas must hold {canvasHeight} x {canvasWidth} = {(long)canvasHeight * canvasWidth} floats, but has {destination.Length}.",
                nameof(destination));
        }
        if (!float.IsFinite(mean))
        {
            throw new ArgumentOutOfRangeException(nameof(mean), mean, "expected a finite mean");
        }
        if (!(std > 0f) || !float.IsFinite(std))
        {
            throw new ArgumentOutOfRangeException(nameof(std), std, "expected a finite, positive standard deviation");
        }

        destination.Fill((0f - mean) / std);

        int top = (canvasHeight - rows) / 2 + shiftY;
        int left = (canvasWidth - cols) / 2 + shiftX;
        // The image rows and columns that stay on the canvas after the shift; the rest are dropped.
        // long arithmetic keeps an absurd shift (int.MinValue) from wrapping around.
        int firstRow = (int)Math.Clamp(-(long)top, 0, rows);
        int endRow = (int)Math.Clamp(canvasHeight - (long)top, 0, rows);
        int firstCol = (int)Math.Clamp(-(long)left, 0, cols);
        int endCol = (int)Math.Clamp(canvasWidth - (long)left, 0, cols);
        int width = endCol - firstCol;
        if (width <= 0)
        {
            return;
        }
        for (int r = firstRow; r < endRow; r++)
        {
            ReadOnlySpan<byte> source = pixels.Slice(r * cols + firstCol, width);
            Span<float> target = destination.Slice((top + r) * canvasWidth + left + firstCol, width);
            for (int c = 0; c < source.Length; c++)
            {
                // Same float32 operations in the same order as PyTorch's ToTensor (v / 255) followed by
                // Normalize (sub mean, div std), so inputs match bit for bit; (x - mean) * (1 / std)
                // would round differently.
                target[c] = (source[c] / 255f - mean) / std;
            }
        }
    }
}
