using System.Numerics;

namespace Engine.IO;

/// <summary>
/// Bounds on what a model file may ask of memory (docs/file-formats.md, "Size limits"): the per-sample input and every
/// per-sample activation hold at most <see cref="MaxActivationElements"/> values, so a small file cannot make its
/// first prediction allocate gigabytes.
/// </summary>
internal static class ModelLimits
{
    /// <summary>Largest per-sample input or activation, in elements: 2^24 (64 MiB as floats, 256 times the seed network's largest).</summary>
    public const long MaxActivationElements = 1L << 24;

    /// <summary>The product of <paramref name="shape"/>'s dimensions, in long arithmetic (stops growing past the limit).</summary>
    public static long Elements(ReadOnlySpan<int> shape)
    {
        long count = 1;
        foreach (int d in shape)
        {
            count *= Math.Max(d, 0);
            if (count > MaxActivationElements)
            {
                return MaxActivationElements + 1;
            }
        }
        return count;
    }

    /// <summary>Throws an <see cref="InvalidDataException"/> naming the file and <paramref name="what"/> when <paramref name="shape"/> holds too many elements.</summary>
    public static void Check(ReadOnlySpan<int> shape, string name, string what)
    {
        if (Elements(shape) > MaxActivationElements)
        {
            throw new InvalidDataException(
                $"{name}: {what} [{string.Join(", ", shape.ToArray())}] holds more than {MaxActivationElements:N0} values per sample, this engine's limit.");
        }
    }

    /// <summary>Largest per-sample im2col matrix of a convolution, in elements: 2^26 (input channels x k x k x output pixels).</summary>
    public const long MaxColumnElements = 1L << 26;

    /// <summary>
    /// Throws an <see cref="InvalidDataException"/> naming the file and layer when a convolution of
    /// <paramref name="inChannels"/> x <paramref name="kernel"/>^2 taps over <paramref name="outPixels"/> output pixels
    /// needs an im2col matrix past <see cref="MaxColumnElements"/>.
    /// </summary>
    public static void CheckConvolution(int inChannels, int kernel, long outPixels, string name, string layer)
    {
        long columns = (long)inChannels * kernel * kernel * outPixels;
        if (columns > MaxColumnElements)
        {
            throw new InvalidDataException(
                $"{name}: layer '{layer}' needs a {columns:N0}-element im2col matrix per sample ({inChannels} x {kernel}x{kernel} taps x {outPixels:N0} pixels), more than this engine's {MaxColumnElements:N0}.");
        }
    }

    /// <summary>Largest magnitude a layer's output may reach, in the worst case, for inputs made from pixels (float range is 3.4e38).</summary>
    public const double MaxOutputBound = 1e30;

    /// <summary>Largest magnitude a normalised pixel may take: (|mean| + 1) / std must not pass it.</summary>
    public const double MaxNormalisedPixel = 1e6;

    /// <summary>
    /// Refuses degenerate normalisation naming the key: <c>input_std</c> not a normal positive float (zero, negative,
    /// subnormal, infinite, NaN), <c>input_mean</c> not finite, or (|mean| + 1) / std past <see cref="MaxNormalisedPixel"/>
    /// (so x = (v / 255 - mean) / std cannot overflow). Returns the largest magnitude of a normalised pixel.
    /// </summary>
    public static double CheckNormalisation(float mean, float std, string name)
    {
        if (!float.IsNormal(std) || std < 0f)
        {
            throw new InvalidDataException($"{name}: metadata 'input_std' is {std}; it must be a finite, normal float > 0.");
        }
        if (!float.IsFinite(mean))
        {
            throw new InvalidDataException($"{name}: metadata 'input_mean' is {mean}; it must be finite.");
        }
        double pixel = (Math.Abs((double)mean) + 1) / std;
        if (pixel > MaxNormalisedPixel)
        {
            throw new InvalidDataException(
                $"{name}: metadata 'input_mean' = {mean} and 'input_std' = {std} normalise pixels to magnitudes up to {pixel:G3}, past {MaxNormalisedPixel:G0}.");
        }
        return Math.Max(Math.Abs((double)mean), Math.Abs(1.0 - mean)) / std;
    }

    /// <summary>Throws naming the tensor and the first offending index when <paramref name="values"/> holds a NaN or an infinity.</summary>
    public static void CheckFinite<T>(ReadOnlySpan<T> values, string name, string tensor) where T : IFloatingPointIeee754<T>
    {
        for (int i = 0; i < values.Length; i++)
        {
            if (!T.IsFinite(values[i]))
            {
                throw new InvalidDataException($"{name}: tensor '{tensor}' holds {values[i]} at index {i}; values must be finite.");
            }
        }
    }
}
