using Engine.Tests.Inference;
using Engine.Data;

namespace Engine.Tests.Data;

public sealed class BatchIteratorTests
{
    private const int Pixels = MnistPreprocessing.CanvasPixels;

    // 103 samples of 2 x 2 pixels: sample i has pixel (0, 0) = i, so a written canvas tells which sample it
    // came from; label i % 10. 103 is prime, so no batch size used below divides it.
    private static MnistDataset Numbered(int count = 103)
    {
        var pixels = new byte[count * 4];
        var labels = new byte[count];
        for (int i = 0; i < count; i++)
        {
            pixels[i * 4] = (byte)i;
            pixels[i * 4 + 3] = 255;
            labels[i] = (byte)(i % 10);
        }
        return new MnistDataset(pixels, labels, 2, 2);
    }

    // Image pixel (0, 0) sits at canvas (15, 15) for a 2 x 2 image: pad = (32 - 2) / 2.
    private static int SampleOf(ReadOnlySpan<float> canvas) => (int)MathF.Round(canvas[15 * 32 + 15] * 255f);

    private static List<int> Epoch(BatchIterator batches, out List<int> labelsSeen, out List<int> lengths)
    {
        var images = new float[batches.BatchSize * Pixels];
        var labels = new int[batches.BatchSize];
        var samples = new List<int>();
        labelsSeen = [];
        lengths = [];
        for (int b = 0; b < batches.BatchCount; b++)
        {
            int n = batches.FillBatch(b, images, labels);
            lengths.Add(n);
            for (int i = 0; i < n; i++)
            {
                samples.Add(SampleOf(images.AsSpan(i * Pixels, Pixels)));
                labelsSeen.Add(labels[i]);
            }
        }
        return samples;
    }

    [Fact]
    public void Sequential_mode_keeps_dataset_order_and_keeps_the_short_last_batch()
    {
        var batches = BatchIterator.Sequential(Numbered(), batchSize: 10, mean: 0f, std: 1f);

        List<int> samples = Epoch(batches, out List<int> labels, out List<int> lengths);

        Assert.Equal(11, batches.BatchCount);
        Assert.Equal([.. Enumerable.Repeat(10, 10), 3], lengths);
        Assert.Equal(Enumerable.Range(0, 103), samples);
        Assert.Equal(samples.Select(i => i % 10), labels);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(16)]
    [InlineData(103)]
    [InlineData(500)]
    public void Shuffled_epoch_covers_every_sample_exactly_once(int batchSize)
    {
        var batches = BatchIterator.Shuffled(Numbered(), batchSize, seed: 42, epoch: 3, mean: 0f, std: 1f);

        List<int> samples = Epoch(batches, out List<int> labels, out _);

        Assert.Equal(Enumerable.Range(0, 103), samples.Order());
        Assert.NotEqual(Enumerable.Range(0, 103), samples);
        Assert.Equal(samples.Select(i => i % 10), labels);
        Assert.Equal((103 + batchSize - 1) / batchSize, batches.BatchCount);
    }

    [Fact]
    public void Same_seed_and_epoch_give_the_same_batches_and_other_epochs_or_seeds_differ()
    {
        MnistDataset data = Numbered();
        List<int> a = Epoch(BatchIterator.Shuffled(data, 8, seed: 7, epoch: 2, 0f, 1f), out _, out _);
        List<int> b = Epoch(BatchIterator.Shuffled(data, 8, seed: 7, epoch: 2, 0f, 1f), out _, out _);
        List<int> nextEpoch = Epoch(BatchIterator.Shuffled(data, 8, seed: 7, epoch: 3, 0f, 1f), out _, out _);
        List<int> otherSeed = Epoch(BatchIterator.Shuffled(data, 8, seed: 8, epoch: 2, 0f, 1f), out _, out _);

        Assert.Equal(a, b);
        Assert.NotEqual(a, nextEpoch);
        Assert.NotEqual(a, otherSeed);
    }

    [Fact]
    public void SetEpoch_depends_only_on_the_epoch_not_on_history()
    {
        MnistDataset data = Numbered();
        var reused = BatchIterator.Shuffled(data, 8, seed: 7, epoch: 0, 0f, 1f, maxShift: 2);
        reused.SetEpoch(1);
        reused.SetEpoch(5);
        var fresh = BatchIterator.Shuffled(data, 8, seed: 7, epoch: 5, 0f, 1f, maxShift: 2);

        Assert.Equal(5, reused.Epoch);
        for (int p = 0; p < data.Count; p++)
        {
            Assert.Equal(fresh.GetSampleIndex(p), reused.GetSampleIndex(p));
            Assert.Equal(fresh.GetShift(p), reused.GetShift(p));
        }
    }

    [Fact]
    public void Seed_and_epoch_are_mixed_not_merely_xored()
    {
        MnistDataset data = Numbered();
        List<int> seed1Epoch0 = Epoch(BatchIterator.Shuffled(data, 8, seed: 1, epoch: 0, 0f, 1f), out _, out _);
        List<int> seed0Epoch1 = Epoch(BatchIterator.Shuffled(data, 8, seed: 0, epoch: 1, 0f, 1f), out _, out _);
        Assert.NotEqual(seed1Epoch0, seed0Epoch1);
    }

    [Fact]
    public void Augmentation_does_not_change_the_order()
    {
        MnistDataset data = Numbered();
        var plain = BatchIterator.Shuffled(data, 8, seed: 11, epoch: 4, 0f, 1f);
        var shifted = BatchIterator.Shuffled(data, 8, seed: 11, epoch: 4, 0f, 1f, maxShift: 2);
        for (int p = 0; p < data.Count; p++)
        {
            Assert.Equal(plain.GetSampleIndex(p), shifted.GetSampleIndex(p));
            Assert.Equal((0, 0), plain.GetShift(p));
        }
    }

    [Fact]
    public void Shifts_stay_within_max_shift_use_the_whole_range_and_are_applied()
    {
        MnistDataset data = BundledMnist.Train.Take(600);
        var batches = BatchIterator.Shuffled(data, 32, seed: 5, epoch: 1, MnistPreprocessing.DefaultMean, MnistPreprocessing.DefaultStd, maxShift: 2);

        var seen = new HashSet<(int, int)>();
        for (int p = 0; p < data.Count; p++)
        {
            (int x, int y) = batches.GetShift(p);
            Assert.InRange(x, -2, 2);
            Assert.InRange(y, -2, 2);
            seen.Add((x, y));
        }
        Assert.Equal(25, seen.Count);

        var images = new float[32 * Pixels];
        var labels = new int[32];
        var expected = new float[Pixels];
        int b = 3;
        int n = batches.FillBatch(b, images, labels);
        for (int i = 0; i < n; i++)
        {
            int position = b * 32 + i;
            int sample = batches.GetSampleIndex(position);
            (int x, int y) = batches.GetShift(position);
            MnistPreprocessing.WriteImage(data.GetImage(sample), 28, 28, expected, MnistPreprocessing.DefaultMean, MnistPreprocessing.DefaultStd, x, y);
            Assert.Equal(expected, images.AsSpan(i * Pixels, Pixels));
            Assert.Equal(data.Labels[sample], labels[i]);
        }
    }

    [Fact]
    public void Batches_do_not_depend_on_request_order_or_threads()
    {
        MnistDataset data = BundledMnist.Train.Take(500);
        var batches = BatchIterator.Shuffled(data, 64, seed: 9, epoch: 2, MnistPreprocessing.DefaultMean, MnistPreprocessing.DefaultStd, maxShift: 2);

        float[][] forward = new float[batches.BatchCount][];
        for (int b = 0; b < batches.BatchCount; b++)
        {
            forward[b] = new float[64 * Pixels];
            batches.FillBatch(b, forward[b], new int[64]);
        }

        float[][] parallel = new float[batches.BatchCount][];
        Parallel.For(0, batches.BatchCount, new ParallelOptions { MaxDegreeOfParallelism = 4 }, i =>
        {
            int b = batches.BatchCount - 1 - i; // backwards, concurrently
            parallel[b] = new float[64 * Pixels];
            batches.FillBatch(b, parallel[b], new int[64]);
        });

        for (int b = 0; b < batches.BatchCount; b++)
        {
            Assert.Equal(forward[b], parallel[b]);
        }
    }

    [Fact]
    public void FillSamples_matches_FillBatch_for_any_batch_size()
    {
        MnistDataset data = Numbered();
        var batches = BatchIterator.Shuffled(data, 10, seed: 3, epoch: 0, 0f, 1f, maxShift: 1);
        var byBatch = new float[10 * Pixels];
        var byRange = new float[10 * Pixels];
        var labelsA = new int[10];
        var labelsB = new int[10];

        int n = batches.FillBatch(4, byBatch, labelsA);
        batches.FillSamples(40, n, byRange, labelsB);

        Assert.Equal(byBatch, byRange);
        Assert.Equal(labelsA, labelsB);
    }


    [Fact]
    public void Bad_arguments_are_rejected()
    {
        MnistDataset data = Numbered();
        Assert.Throws<ArgumentOutOfRangeException>(() => BatchIterator.Sequential(data, 0, 0f, 1f));
        Assert.Throws<ArgumentOutOfRangeException>(() => BatchIterator.Shuffled(data, 8, 1, -1, 0f, 1f));
        Assert.Throws<ArgumentOutOfRangeException>(() => BatchIterator.Shuffled(data, 8, 1, 0, 0f, 1f, maxShift: 17));
        Assert.Throws<ArgumentOutOfRangeException>(() => BatchIterator.Sequential(data, 8, 0f, -1f));
        Assert.Throws<ArgumentException>(() => BatchIterator.Sequential(new MnistDataset(new byte[33 * 33], [0], 33, 33), 8, 0f, 1f));

        var batches = BatchIterator.Sequential(data, 8, 0f, 1f);
        Assert.Throws<ArgumentOutOfRangeException>(() => batches.FillBatch(13, new float[8 * Pixels], new int[8]));
        Assert.Throws<ArgumentException>(() => batches.FillBatch(0, new float[8 * Pixels - 1], new int[8]));
        Assert.Throws<ArgumentException>(() => batches.FillBatch(0, new float[8 * Pixels], new int[7]));
        // The short last batch (103 = 12 x 8 + 7) fits a buffer sized for it alone.
        Assert.Equal(7, batches.FillBatch(12, new float[7 * Pixels], new int[7]));
    }
}

/// <summary>Allocation counts read the process-wide counter, so they run alone (every thread counts, workers included).</summary>
[Collection(ProcessWideMeasurements.Name)]
public sealed class BatchIteratorAllocationTests
{
    [Fact]
    public void FillBatch_allocates_nothing()
    {
        var batches = BatchIterator.Shuffled(BundledMnist.Train.Take(256), 64, seed: 1, epoch: 0, 0f, 1f, maxShift: 2);
        var images = new float[64 * MnistPreprocessing.CanvasPixels];
        var labels = new int[64];
        batches.FillBatch(0, images, labels); // warm up: the first call JIT-compiles

        Assert.Equal(0, ProcessWideMeasurements.LeastAllocated(() =>
        {
            for (int b = 0; b < batches.BatchCount; b++)
            {
                batches.FillBatch(b, images, labels);
            }
        }));
    }
}
