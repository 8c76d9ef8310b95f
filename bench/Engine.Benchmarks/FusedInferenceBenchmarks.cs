using BenchmarkDotNet.Attributes;
using Engine.Layers;

namespace Engine.Benchmarks;

/// <summary>
/// The float inference path of the seed network with its fused steps (conv1 + ReLU; conv2 + ReLU + pool: see
/// docs/float-engine.md, "Inference path") against the same network run layer by layer (every layer's full output
/// written and read back), in the same run: batch 1 and 64, 1 and 2 threads. Both share the rest of the inference path
/// (the direct conv1 kernel, the one-row linear kernel at batch 1), so the ratio is the fusion's alone.
/// </summary>
[MemoryDiagnoser]
[MedianColumn]
public class FusedInferenceBenchmarks
{
    private InferenceNetwork _fused = null!, _layered = null!;
    private float[] _input = null!, _logits = null!;

    /// <summary>Samples per call.</summary>
    [Params(1, 64)]
    public int Batch { get; set; }

    /// <summary>Threads one call may use.</summary>
    [Params(1, 2)]
    public int Threads { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        Sequential network = SeedNetwork.Create(seed: 1);
        _fused = new InferenceNetwork(network, [1, 32, 32], 0f, 1f, fuse: true);
        _layered = new InferenceNetwork(network, [1, 32, 32], 0f, 1f, fuse: false);
        _input = BenchmarkInputs.Images(Batch).Data.ToArray();
        _logits = new float[Batch * 10];
    }

    /// <summary>Every layer on its own.</summary>
    [Benchmark(Baseline = true)]
    public float[] LayerByLayer()
    {
        _layered.Predict(_input, Batch, _logits, Threads);
        return _logits;
    }

    /// <summary>Convolutions fused with the ReLU and pooling after them.</summary>
    [Benchmark]
    public float[] Fused()
    {
        _fused.Predict(_input, Batch, _logits, Threads);
        return _logits;
    }
}
