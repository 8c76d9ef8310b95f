namespace Engine.Data;

/// <summary>
/// Turns raw digit bytes into network input, the <b>contract</b> of docs/file-formats.md, "Input preprocessing": a 1 x 32 x 32 float
/// canvas where <c>x = (v / 255 - mean) / std</c> for every image pixel <c>v</c>, the image placed at
/// offset <c>((32 - rows) / 2, (32 - cols) / 2)</c> (2, 2 for MNIST's 28 x 28), and every other canvas
/// cell <c>(0 - mean) / std</c>. That equals PyTorch's
/// <c>(F.pad(x / 255, (2, 2, 2, 2)) - mean) / std</c> in float32, operation for operation: padding
/// happens before normalisation, so the border is a normalised zero, not a zero.
/// </summary>
public static class MnistPreprocessing
{
    /// <summary>Side of the square network input, 32.</summary>
    public const int CanvasSize = 32;

    /// <summary>Floats per network input image, 32 x 32 = 1024.</summary>
    public const int CanvasPixels = CanvasSize * CanvasSize;

    /// <summary>
    /// Mean of the padded 32 x 32 training images of the bundled 7,000-image subset after scaling to
    /// [0, 1]: measured 0.100661 (the unpadded 28 x 28 mean, 0.131476, times 784 / 1024). The
    /// full-MNIST 28 x 28 figure often quoted, 0.1307, is not the right one here because the network
    /// sees the padded canvas. A test recomputes it from the data.
    /// </summary>
    public const float DefaultMean = 0.1007f;

    /// <summary>
    /// Standard deviation (population, over every pixel of every padded 32 x 32 training image of the
    /// bundled subset, scaled to [0, 1]): measured 0.276107. A test recomputes it from the data.
    /// </summary>
    public const float DefaultStd = 0.2761f;

    /// <summary>
    /// Writes one image into a 32 x 32 canvas:
    /// <c>destination[(top + r) * 32 + left + c] = (pixels[r * cols + c] / 255f - mean) / std</c> with
    /// <c>top = (32 - rows) / 2 + shiftY</c> and <c>left = (32 - cols) / 2 + shiftX</c>; every other cell
    /// is the background <c>(0 - mean) / std</c>. Image pixels that a shift moves off the canvas are
    /// dropped.
    /// </summary>
    /// <param name="pixels">The image, <paramref name="rows"/> x <paramref name="cols"/> bytes, row-major.</param>
    /// <param name="rows">Image height, 1 to 32.</param>
    /// <param name="cols">Image width, 1 to 32.</param>
    /// <param name="destination">The canvas, exactly 32 x 32 floats, row-major; every element is written.</param>
    /// <param name="mean">Subtracted after scaling to [0, 1]; 0 for none.</param>
    /// <param name="std">Divided by after subtracting the mean; positive, 1 for none.</param>
    /// <param name="shiftX">Columns to move the image right (negative: left), for augmentation.</param>
    /// <param name="shiftY">Rows to move the image down (negative: up), for augmentation.</param>
    public static void WriteImage(
        ReadOnlySpan<byte> pixels, int rows, int cols, Span<float> destination, float mean, float std,
        int shiftX = 0, int shiftY = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(rows);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(cols);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(rows, CanvasSize);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(cols, CanvasSize);
        if (pixels.Length != rows * cols)
        {
            throw new ArgumentException(
                $"a {rows} x {cols} image has {rows * cols} pixels, but {pixels.Length} were given.", nameof(pixels));
        }
        if (destination.Length != CanvasPixels)
        {
            throw new ArgumentException(
                $"the canvas must hold {CanvasSize} x {CanvasSize} = {CanvasPixels} floats, but has {destination.Length}.",
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

        int top = (CanvasSize - rows) / 2 + shiftY;
        int left = (CanvasSize - cols) / 2 + shiftX;
        // The image rows and columns that stay on the canvas after the shift; the rest are dropped.
        // long arithmetic keeps an absurd shift (int.MinValue) from wrapping around.
        int firstRow = (int)Math.Clamp(-(long)top, 0, rows);
        int endRow = (int)Math.Clamp(CanvasSize - (long)top, 0, rows);
        int firstCol = (int)Math.Clamp(-(long)left, 0, cols);
        int endCol = (int)Math.Clamp(CanvasSize - (long)left, 0, cols);
        int width = endCol - firstCol;
        if (width <= 0)
        {
            return;
        }
        for (int r = firstRow; r < endRow; r++)
        {
            ReadOnlySpan<byte> source = pixels.Slice(r * cols + firstCol, width);
            Span<float> target = destination.Slice((top + r) * CanvasSize + left + firstCol, width);
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
