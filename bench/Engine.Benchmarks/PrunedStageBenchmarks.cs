using BenchmarkDotNet.Attributes;
using Engine.Kernels;
using Engine.Layers;
using Engine.Pruning;
using Engine.Tensors;

namespace Engine.Benchmarks;

/// <summary>
/// Where batch-64 inference of the seed network (conv2 32 -> 64) and of its 50%-pruned twin (conv2 32 -> 32) spends its
/// time, one stage at a time on one thread, each stage over the 64 samples: conv1 (direct, bias and ReLU fused), conv2's
/// Winograd padding, input transform, 36 GEMMs and output transform (two 32-tile chunks per sample), the bias + ReLU +
/// pooling epilogue, fc1 and fc2; and the whole inference path for comparison.
/// </summary>
[MemoryDiagnoser]
[MedianColumn]
public unsafe class PrunedStageBenchmarks
{
    private const int Batch = 64;
    private InferenceNetwork _network = null!, _unchained = null!;
    private Conv2d _conv1 = null!, _conv2 = null!;
    private Linear _fc1 = null!, _fc2 = null!;
    private FloatTensor _input = null!;
    private float[] _a1 = null!, _raw = null!, _pooled = null!, _h = null!, _logits = null!, _padded = null!, _chunk = null!, _filters = null!;
    private readonly InferenceWorkspace _workspace = new();
    private ConvGeometry _g;

    /// <summary>conv2's output channels: 64 (unpruned) or 32 (pruned by half).</summary>
    [Params(64, 32)]
    public int Conv2Filters { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        int[] inputShape = [1, 32, 32];
        Sequential network = SeedNetwork.Create(seed: 1);
        network.Threads = 1;
        if (Conv2Filters != 64)
        {
            PruningPlan plan = NeuronImportance.Rank(network, inputShape, PruningCriterion.L1, 1.0 - Conv2Filters / 64.0, ["conv2"]);
            network = StructuredPruner.Apply(network, plan, inputShape);
        }
        _network = new InferenceNetwork(network, inputShape, 0f, 1f);
        _unchained = new InferenceNetwork(network, inputShape, 0f, 1f, fuse: true, chain: false);
        _conv1 = (Conv2d)network.Layers.First(l => l.Name == "conv1").Layer;
        _conv2 = (Conv2d)network.Layers.First(l => l.Name == "conv2").Layer;
        _fc1 = (Linear)network.Layers.First(l => l.Name == "fc1").Layer;
        _fc2 = (Linear)network.Layers.First(l => l.Name == "fc2").Layer;
        _input = BenchmarkInputs.Images(Batch);
        _g = new ConvGeometry(32, 32, 32, 3, 3, 1, 1, 1, 1);
        _a1 = new float[Batch * 32 * 1024];
        _conv1.InferFused(_input.Data, inputShape, Batch, _a1, _workspace, new Conv2d.FusedEpilogue(true, 1));
        _raw = new float[Conv2Filters * 1024];
        _pooled = new float[Batch * Conv2Filters * 64];
        _h = new float[Batch * 128];
        _logits = new float[Batch * 10];
        _padded = new float[WinogradF32.PaddedLength(_g)];
        WinogradF32.Prepare(_a1.AsSpan(0, 32 * 1024), _g, _padded);
        _chunk = new float[WinogradF32.ChunkScratchLength(32, Conv2Filters)];
        _filters = new float[WinogradF32.TransformedFiltersLength(Conv2Filters, 32)];
        WinogradF32.TransformFilters(_conv2.Weight.Value.Data, Conv2Filters, 32, false, _filters, new float[WinogradF32.FilterScratchLength(Conv2Filters, 32)]);
        int nr = WinogradF32.Best == KernelVariant.Avx512 ? 32 : 16;
        fixed (float* px = _padded, ps = _chunk, pu = _filters, py = _raw)
        {
            for (int chunk = 0; chunk < 2; chunk++)
            {
                float* v = ps, m = ps + WinogradF32.Positions * WinogradF32.PositionStride(32);
                WinogradF32.TransformInput(_g, px, chunk * 32, 32, 32, nr, v);
                WinogradF32.MultiplyPositions(32, Conv2Filters, pu, v, m, 32, nr);
            }
        }
    }

    /// <summary>The whole inference path, one thread.</summary>
    [Benchmark(Baseline = true)]
    public float[] Whole()
    {
        _network.Predict(_input.Data, Batch, _logits, 1);
        return _logits;
    }

    /// <summary>The whole inference path, two threads (32 samples each).</summary>
    [Benchmark]
    public float[] WholeTwoThreads()
    {
        _network.Predict(_input.Data, Batch, _logits, 2);
        return _logits;
    }

    /// <summary>The whole inference path with conv1 and conv2 as two fused steps (not chained), on <paramref name="threads"/>.</summary>
    public float[] WholeUnchained(int threads)
    {
        _unchained.Predict(_input.Data, Batch, _logits, threads);
        return _logits;
    }

    /// <summary>conv1 with its bias and ReLU (direct kernel).</summary>
    [Benchmark]
    public void Conv1() => _conv1.InferFused(_input.Data, [1, 32, 32], Batch, _a1, _workspace, new Conv2d.FusedEpilogue(true, 1));

    /// <summary>conv2: copying each image into the zero-padded tile grid.</summary>
    [Benchmark]
    public void WinogradPad()
    {
        for (int n = 0; n < Batch; n++)
        {
            WinogradF32.Prepare(_a1.AsSpan(n * 32 * 1024, 32 * 1024), _g, _padded);
        }
    }

    /// <summary>conv2: the input transform of both chunks of every image.</summary>
    [Benchmark]
    public void WinogradInputTransform()
    {
        int nr = WinogradF32.Best == KernelVariant.Avx512 ? 32 : 16;
        fixed (float* px = _padded, ps = _chunk)
        {
            for (int n = 0; n < Batch; n++)
            {
                for (int chunk = 0; chunk < 2; chunk++)
                {
                    WinogradF32.TransformInput(_g, px, chunk * 32, 32, 32, nr, ps);
                }
            }
        }
    }

    /// <summary>conv2: the 36 GEMMs of both chunks of every image.</summary>
    [Benchmark]
    public void WinogradGemms()
    {
        int nr = WinogradF32.Best == KernelVariant.Avx512 ? 32 : 16;
        fixed (float* ps = _chunk, pu = _filters)
        {
            float* m = ps + WinogradF32.Positions * WinogradF32.PositionStride(32);
            for (int n = 0; n < Batch * 2; n++)
            {
                WinogradF32.MultiplyPositions(32, Conv2Filters, pu, ps, m, 32, nr);
            }
        }
    }

    /// <summary>conv2: the output transform of both chunks of every image.</summary>
    [Benchmark]
    public void WinogradOutputTransform()
    {
        fixed (float* ps = _chunk, py = _raw)
        {
            float* m = ps + WinogradF32.Positions * WinogradF32.PositionStride(32);
            for (int n = 0; n < Batch; n++)
            {
                for (int chunk = 0; chunk < 2; chunk++)
                {
                    WinogradF32.TransformOutput(_g, Conv2Filters, m, null, false, false, chunk * 32, 32, py);
                }
            }
        }
    }

    /// <summary>conv2: bias, ReLU and 4 x 4 average pooling of every image's raw output.</summary>
    [Benchmark]
    public void Epilogue()
    {
        for (int n = 0; n < Batch; n++)
        {
            ConvEpilogueF32.Apply(_raw, 1024, Conv2Filters, 32, 32, _conv2.Bias.Value.Data, true, 4,
                _pooled.AsSpan(n * Conv2Filters * 64, Conv2Filters * 64), 64, ConvEpilogueF32.Best);
        }
    }

    /// <summary>fc1 over the batch.</summary>
    [Benchmark]
    public void Fc1() => _fc1.Infer(_pooled, [Conv2Filters * 64], Batch, _h, _workspace);

    /// <summary>fc2 over the batch.</summary>
    [Benchmark]
    public void Fc2() => _fc2.Infer(_h, [128], Batch, _logits, _workspace);
}
