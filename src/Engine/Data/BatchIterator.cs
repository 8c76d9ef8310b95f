
namespace Engine.Data;

/// <summary>
/// Cuts a dataset into mini-batches of network input: batch <c>b</c> holds the samples at epoch positions
/// <c>b * BatchSize .. min((b + 1) * BatchSize, Count) - 1</c>, each written by
/// <see cref="MnistPreprocessing.WriteImage"/> into a caller-owned [B, 1, 32, 32] float buffer. The last
/// batch is smaller when <c>BatchSize</c> does not divide <c>Count</c>; no sample is dropped.
/// </summary>
/// <remarks>
/// <para>
/// Sequential mode (<see cref="Sequential"/>, for evaluation) keeps dataset order and never shifts.
/// Shuffled mode (<see cref="Shuffled"/>, for training) visits the samples in a permutation drawn, per
/// epoch, from <c>new SeededRandom(seed ^ Mix(epoch))</c>; with <c>maxShift &gt; 0</c> the same generator
/// then draws, for each epoch position in turn, a shift <c>(dx, dy)</c> uniform in
/// [-maxShift, maxShift]². Drawing the shifts after the permutation means that turning augmentation on
/// does not change the order.
/// </para>
/// <para>
/// Everything random is fixed in <see cref="SetEpoch"/>, so a batch depends only on (seed, epoch,
/// batch index): <see cref="FillBatch"/> allocates nothing, changes no state, and may be called in any
/// order and from several threads at once (but not concurrently with <see cref="SetEpoch"/>).
/// </para>
/// </remarks>
public sealed class BatchIterator : IBatchSource
{
    /// <summary>The augmentation <c>engine train</c> uses by default: shifts of up to 2 pixels each way.</summary>
    public const int DefaultMaxShift = 2;

    private static readonly int[] s_sampleShape = [1, MnistPreprocessing.CanvasSize, MnistPreprocessing.CanvasSize];

    private readonly MnistDataset _dataset;
    private readonly int[] _order;     // [Count]: dataset index at each epoch position
    private readonly sbyte[]? _shifts; // [Count, 2]: (dx, dy) at each epoch position; null without augmentation

    private BatchIterator(
        MnistDataset dataset, int batchSize, bool shuffle, ulong seed, int maxShift, float mean, float std)
    {
        ArgumentNullException.ThrowIfNull(dataset);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(batchSize);
        ArgumentOutOfRangeException.ThrowIfNegative(maxShift);
        // A shift of half the canvas already moves the whole digit out; larger values add nothing.
        ArgumentOutOfRangeException.ThrowIfGreaterThan(maxShift, MnistPreprocessing.CanvasSize / 2);
        if (dataset.Rows > MnistPreprocessing.CanvasSize || dataset.Cols > MnistPreprocessing.CanvasSize)
        {
            throw new ArgumentException(
                $"{dataset.Rows} x {dataset.Cols} images do not fit the {MnistPreprocessing.CanvasSize} x " +
                $"{MnistPreprocessing.CanvasSize} network input.", nameof(dataset));
        }
        if (!float.IsFinite(mean))
        {
            throw new ArgumentOutOfRangeException(nameof(mean), mean, "expected a finite mean");
        }
        if (!(std > 0f) || !float.IsFinite(std))
        {
            throw new ArgumentOutOfRangeException(nameof(std), std, "expected a finite, positive standard deviation");
        }

        _dataset = dataset;
        BatchSize = batchSize;
        IsShuffled = shuffle;
        Seed = seed;
        MaxShift = maxShift;
        Mean = mean;
        Std = std;
        _order = new int[dataset.Count];
        _shifts = maxShift > 0 ? new sbyte[2 * dataset.Count] : null;
        BatchCount = (int)(((long)dataset.Count + batchSize - 1) / batchSize);
    }

    /// <summary>
    /// Batches in dataset order, without augmentation: the evaluation mode.
    /// </summary>
    /// <param name="dataset">The samples.</param>
    /// <param name="batchSize">Samples per batch (the last batch may hold fewer), positive.</param>
    /// <param name="mean">Input normalisation mean (see <see cref="MnistPreprocessing.WriteImage"/>).</param>
    /// <param name="std">Input normalisation standard deviation, positive.</param>
    public static BatchIterator Sequential(MnistDataset dataset, int batchSize, float mean, float std)
    {
        var iterator = new BatchIterator(dataset, batchSize, shuffle: false, seed: 0, maxShift: 0, mean, std);
        iterator.SetEpoch(0);
        return iterator;
    }

    /// <summary>
    /// Batches in a seeded random order, reshuffled by <see cref="SetEpoch"/>, optionally with random
    /// translations: the training mode.
    /// </summary>
    /// <param name="dataset">The samples.</param>
    /// <param name="batchSize">Samples per batch (the last batch may hold fewer), positive.</param>
    /// <param name="seed">Names the sequence of epochs; the same (seed, epoch) gives the same batches.</param>
    /// <param name="epoch">The epoch to start at, non-negative.</param>
    /// <param name="mean">Input normalisation mean (see <see cref="MnistPreprocessing.WriteImage"/>).</param>
    /// <param name="std">Input normalisation standard deviation, positive.</param>
    /// <param name="maxShift">Largest translation in pixels along each axis, 0 (none) to 16.</param>
    public static BatchIterator Shuffled(
        MnistDataset dataset, int batchSize, ulong seed, int epoch, float mean, float std, int maxShift = 0)
    {
        var iterator = new BatchIterator(dataset, batchSize, shuffle: true, seed, maxShift, mean, std);
        iterator.SetEpoch(epoch);
        return iterator;
    }

    /// <summary>The dataset the batches are drawn from.</summary>
    public MnistDataset Dataset => _dataset;

    /// <summary>Samples per batch; the last batch may hold fewer.</summary>
    public int BatchSize { get; }

    /// <summary>Batches per epoch, <c>ceil(Count / BatchSize)</c>.</summary>
    public int BatchCount { get; }

    /// <summary>Whether the order is a seeded permutation (true) or dataset order (false).</summary>
    public bool IsShuffled { get; }

    /// <summary>The seed of a shuffled iterator; 0 for a sequential one.</summary>
    public ulong Seed { get; }

    /// <summary>Largest random translation per axis in pixels; 0 when there is no augmentation.</summary>
    public int MaxShift { get; }

    /// <summary>Input normalisation mean passed to <see cref="MnistPreprocessing.WriteImage"/>.</summary>
    public float Mean { get; }

    /// <summary>Input normalisation standard deviation passed to <see cref="MnistPreprocessing.WriteImage"/>.</summary>
    public float Std { get; }

    /// <summary>The current epoch, set by <see cref="SetEpoch"/>.</summary>
    public int Epoch { get; private set; }

    /// <summary>
    /// Fixes the order and shifts for <paramref name="epoch"/>. They depend only on the seed and the epoch,
    /// never on earlier epochs, so training can resume at any epoch. Reuses the iterator's buffers; a
    /// sequential iterator only records the epoch.
    /// </summary>
    public void SetEpoch(int epoch)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(epoch);
        Epoch = epoch;
        for (int i = 0; i < _order.Length; i++)
        {
            _order[i] = i;
        }
        if (!IsShuffled)
        {
            return;
        }
        var random = new SeededRandom(Seed ^ MixEpoch(epoch));
        random.Shuffle(_order.AsSpan());
        if (_shifts is not null)
        {
            int span = 2 * MaxShift + 1;
            for (int i = 0; i < _shifts.Length; i++)
            {
                _shifts[i] = (sbyte)(random.NextInt(span) - MaxShift);
            }
        }
    }

    /// <summary>The number of samples in batch <paramref name="batchIndex"/>: <see cref="BatchSize"/>, or fewer for the last.</summary>
    public int GetBatchLength(int batchIndex)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(batchIndex);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(batchIndex, BatchCount);
        return Math.Min(BatchSize, _dataset.Count - batchIndex * BatchSize);
    }

    /// <summary>The dataset index of the sample at <paramref name="position"/> in this epoch's order.</summary>
    public int GetSampleIndex(int position)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(position);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(position, _order.Length);
        return _order[position];
    }

    /// <summary>The translation applied to the sample at <paramref name="position"/> in this epoch; (0, 0) without augmentation.</summary>
    public (int X, int Y) GetShift(int position)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(position);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(position, _order.Length);
        return _shifts is null ? (0, 0) : (_shifts[2 * position], _shifts[2 * position + 1]);
    }

    /// <summary>
    /// Writes batch <paramref name="batchIndex"/>: for each sample <c>i</c> of the batch, its input image to
    /// <c>images[i * 1024 .. (i + 1) * 1024]</c> (one channel of 32 x 32) and its label to <c>labels[i]</c>.
    /// Elements past the batch's length are left untouched. Equivalent to
    /// <c>FillSamples(batchIndex * BatchSize, GetBatchLength(batchIndex), images, labels)</c>.
    /// </summary>
    /// <param name="batchIndex">0 to <see cref="BatchCount"/> - 1.</param>
    /// <param name="images">[B, 1, 32, 32] floats, B at least the batch's length.</param>
    /// <param name="labels">[B] class labels, B at least the batch's length.</param>
    /// <returns>The batch's length: <see cref="BatchSize"/>, or fewer for the last batch.</returns>
    public int FillBatch(int batchIndex, Span<float> images, Span<int> labels)
    {
        int length = GetBatchLength(batchIndex);
        FillSamples(batchIndex * BatchSize, length, images, labels);
        return length;
    }

    /// <summary>
    /// Writes the samples at epoch positions <paramref name="start"/> .. <paramref name="start"/> +
    /// <paramref name="count"/> - 1 to <c>images[i * 1024 ..]</c> and <c>labels[i]</c>, i = 0 .. count - 1.
    /// Order and shifts belong to positions, not batches, so this serves a caller that picks its own batch
    /// size per call and yields the same samples as <see cref="FillBatch"/> would.
    /// </summary>
    /// <param name="start">First epoch position, 0 to <c>Dataset.Count</c>.</param>
    /// <param name="count">Samples to write; <c>start + count</c> at most <c>Dataset.Count</c>.</param>
    /// <param name="images">[count, 1, 32, 32] floats or more.</param>
    /// <param name="labels">[count] class labels or more.</param>
    public void FillSamples(int start, int count, Span<float> images, Span<int> labels)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(start);
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(count, _order.Length - start);
        if (images.Length < (long)count * MnistPreprocessing.CanvasPixels)
        {
            throw new ArgumentException(
                $"{count} images need {(long)count * MnistPreprocessing.CanvasPixels} floats, " +
                $"but the buffer has {images.Length}.", nameof(images));
        }
        if (labels.Length < count)
        {
            throw new ArgumentException($"{count} labels do not fit a buffer of {labels.Length}.", nameof(labels));
        }

        for (int i = 0; i < count; i++)
        {
            int position = start + i;
            int sample = _order[position];
            int shiftX = 0, shiftY = 0;
            if (_shifts is not null)
            {
                shiftX = _shifts[2 * position];
                shiftY = _shifts[2 * position + 1];
            }
            MnistPreprocessing.WriteImage(
                _dataset.GetImage(sample), _dataset.Rows, _dataset.Cols,
                images.Slice(i * MnistPreprocessing.CanvasPixels, MnistPreprocessing.CanvasPixels),
                Mean, Std, shiftX, shiftY);
            labels[i] = _dataset.Labels[sample];
        }
    }

    // The SplitMix64 finaliser (Steele, Lea and Flood 2014) applied to the epoch before it is XORed into
    // the seed: a plain seed ^ epoch would give (seed 1, epoch 0) and (seed 0, epoch 1) the same stream.
    private static ulong MixEpoch(int epoch)
    {
        ulong z = (ulong)epoch * 0x9E3779B97F4A7C15UL + 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <inheritdoc/>
    int IBatchSource.Count => _dataset.Count;

    /// <inheritdoc/>
    int[] IBatchSource.SampleShape => s_sampleShape;

    /// <summary>
    /// The trainer's view: positions <c>batchIndex * batchSize ..</c> of epoch <paramref name="epoch"/> (moving to that
    /// epoch first when needed). The iterator's own <see cref="BatchSize"/> does not matter here: order and shifts
    /// belong to positions.
    /// </summary>
    int IBatchSource.FillBatch(int epoch, int batchIndex, int batchSize, Span<float> inputs, Span<int> labels)
    {
        if (epoch != Epoch)
        {
            SetEpoch(epoch);
        }
        int start = batchIndex * batchSize;
        int count = Math.Min(batchSize, _dataset.Count - start);
        FillSamples(start, count, inputs, labels);
        return count;
    }
}
