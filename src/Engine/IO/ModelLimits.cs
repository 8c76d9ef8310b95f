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
}
