using BenchmarkDotNet.Attributes;
using Engine.Kernels;
using Engine.Layers;
using Engine.Pruning;
using Engine.Tensors;

namespace Engine.Benchmarks;

/// <summary>
/// Batch-64 inference of the seed network against the same network with 50% of conv2's channels structurally removed
/// (32 of 64 filters, with conv2's share of fc1's columns): conv2 and fc1 do half the work. Through the training forward
/// pass and through the inference path (<see cref="InferenceNetwork"/>, fused), in the same run.
/// </summary>
[MemoryDiagnoser]
[MedianColumn]
public class PrunedInferenceBenchmarks
{
    private Sequential _full = null!;
    private Sequential _pruned = null!;
    private FloatTensor _input = null!;
    private InferenceNetwork _fullInference = null!, _prunedInference = null!, _fullUnchained = null!, _prunedUnchained = null!;
    private float[] _logits = null!;

    /// <summary>Threads the kernels may use.</summary>
    [Params(1, 2)]
    public int Threads { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        int[] inputShape = [1, 32, 32];
        _full = SeedNetwork.Create(seed: 1);
        _full.Threads = Threads;
        PruningPlan plan = NeuronImportance.Rank(_full, inputShape, PruningCriterion.L1, 0.5, ["conv2"]);
        _pruned = StructuredPruner.Apply(_full, plan, inputShape);
        _input = BenchmarkInputs.Images(64);
        _fullInference = new InferenceNetwork(_full, inputShape, 0f, 1f);
        _prunedInference = new InferenceNetwork(_pruned, inputShape, 0f, 1f);
        _fullUnchained = new InferenceNetwork(_full, inputShape, 0f, 1f, fuse: true, chain: false);
        _prunedUnchained = new InferenceNetwork(_pruned, inputShape, 0f, 1f, fuse: true, chain: false);
        _logits = new float[64 * 10];
    }

    /// <summary>The unpruned network.</summary>
    [Benchmark(Baseline = true)]
    public FloatTensor Unpruned() => _full.Forward(_input);

    /// <summary>conv2 pruned by half.</summary>
    [Benchmark]
    public FloatTensor Conv2HalfPruned() => _pruned.Forward(_input);

    /// <summary>The unpruned network through the inference path.</summary>
    [Benchmark]
    public float[] UnprunedInference()
    {
        _fullInference.Predict(_input.Data, 64, _logits, Threads);
        return _logits;
    }

    /// <summary>conv2 pruned by half, through the inference path.</summary>
    [Benchmark]
    public float[] Conv2HalfPrunedInference()
    {
        _prunedInference.Predict(_input.Data, 64, _logits, Threads);
        return _logits;
    }

    /// <summary>The unpruned network through the inference path, conv1 and conv2 as two steps (before the chained step).</summary>
    [Benchmark]
    public float[] UnprunedInferenceUnchained()
    {
        _fullUnchained.Predict(_input.Data, 64, _logits, Threads);
        return _logits;
    }

    /// <summary>conv2 pruned by half, through the inference path, conv1 and conv2 as two steps.</summary>
    [Benchmark]
    public float[] Conv2HalfPrunedInferenceUnchained()
    {
        _prunedUnchained.Predict(_input.Data, 64, _logits, Threads);
        return _logits;
    }
}
