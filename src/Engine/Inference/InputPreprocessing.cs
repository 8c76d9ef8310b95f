using Engine.Data;

namespace Engine.Inference;

/// <summary>
/// What a model expects as input, from its file: samples of <see cref="Channels"/> x <see cref="Height"/> x
/// <see cref="Width"/> floats, made from 8-bit pixels as <c>x = (v / 255 - Mean) / Std</c> on a canvas of that size
/// with the image centred and the border a normalised zero (docs/file-formats.md, "Input preprocessing").
/// </summary>
/// <param name="Mean">Subtracted after scaling pixels to [0, 1].</param>
/// <param name="Std">Divided by after subtracting the mean.</param>
/// <param name="Channels">Input channels (1 for grey digits).</param>
/// <param name="Height">Canvas height.</param>
/// <param name="Width">Canvas width.</param>
public sealed record InputPreprocessing(float Mean, float Std, int Channels, int Height, int Width)
{
    /// <summary>Floats per input sample: Channels x Height x Width.</summary>
    public int Length => Channels * Height * Width;

    /// <summary>
    /// Writes the model input for an image of <paramref name="height"/> x <paramref name="width"/> 8-bit pixels
    /// (<see cref="Channels"/> planes, row-major, planes one after another), at most the canvas in each direction:
    /// centred on the canvas, normalised, the rest of the canvas the normalised zero. Allocation-free.
    /// </summary>
    public void Write(ReadOnlySpan<byte> pixels, int height, int width, Span<float> input)
    {
        if (pixels.Length != (long)Channels * height * width)
        {
            throw new ArgumentException(
                $"a {Channels} x {height} x {width} image has {(long)Channels * height * width} pixels, but {pixels.Length} were given.", nameof(pixels));
        }
        if (input.Length != Length)
        {
            throw new ArgumentException($"the model input holds {Channels} x {Height} x {Width} = {Length} floats, but {input.Length} were given.", nameof(input));
        }
        int plane = height * width, canvas = Height * Width;
        for (int c = 0; c < Channels; c++)
        {
            ImagePreprocessing.WriteImage(pixels.Slice(c * plane, plane), height, width, input.Slice(c * canvas, canvas), Height, Width, Mean, Std);
        }
    }
}
