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
    /// Writes one image into a 32 x 32 canvas: <see cref="ImagePreprocessing.WriteImage"/> with a
    /// <see cref="CanvasSize"/> x <see cref="CanvasSize"/> canvas.
    /// </summary>
    public static void WriteImage(
        ReadOnlySpan<byte> pixels, int rows, int cols, Span<float> destination, float mean, float std,
        int shiftX = 0, int shiftY = 0) =>
        ImagePreprocessing.WriteImage(pixels, rows, cols, destination, CanvasSize, CanvasSize, mean, std, shiftX, shiftY);
}
