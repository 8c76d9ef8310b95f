namespace Engine.Data;

/// <summary>
/// Samples already in memory, served in order: inputs [count, sample shape] and optional labels, for example your own
/// calibration images for quantization. The epoch does not change the order.
/// </summary>
public sealed class InMemoryBatches : IBatchSource
{
    private readonly float[] _inputs;
    private readonly int[]? _labels;
    private readonly int _sampleSize;

    /// <summary>Serves <paramref name="inputs"/> (a whole number of samples of <paramref name="sampleShape"/>), labelled 0 unless <paramref name="labels"/> are given.</summary>
    public InMemoryBatches(float[] inputs, int[] sampleShape, int[]? labels = null)
    {
        _sampleSize = sampleShape.Aggregate(1, (a, d) => d > 0 ? a * d : throw new ArgumentException($"sample shape [{string.Join(", ", sampleShape)}] must be positive."));
        if (inputs.Length % _sampleSize != 0 || (labels is not null && labels.Length != inputs.Length / _sampleSize))
        {
            throw new ArgumentException($"{inputs.Length} inputs are not {labels?.Length.ToString() ?? "a whole number of"} samples of [{string.Join(", ", sampleShape)}].");
        }
        _inputs = inputs;
        _labels = labels;
        SampleShape = sampleShape;
    }

    /// <inheritdoc/>
    public int Count => _inputs.Length / _sampleSize;

    /// <inheritdoc/>
    public int[] SampleShape { get; }

    /// <inheritdoc/>
    public int FillBatch(int epoch, int batchIndex, int batchSize, Span<float> inputs, Span<int> labels)
    {
        int start = batchIndex * batchSize, count = Math.Clamp(Count - start, 0, batchSize);
        _inputs.AsSpan(start * _sampleSize, count * _sampleSize).CopyTo(inputs);
        if (_labels is null)
        {
            labels[..count].Clear();
        }
        else
        {
            _labels.AsSpan(start, count).CopyTo(labels);
        }
        return count;
    }
}
