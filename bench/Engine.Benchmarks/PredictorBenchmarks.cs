using BenchmarkDotNet.Attributes;
using Engine.Data;
using Engine.Inference;
using Engine.Layers;
using Engine.Quantization;
using Engine.Tensors;

namespace Engine.Benchmarks;

/// <summary>
/// The embedding front door against the paths it replaced, in the same run: the seed network through
/// <see cref="Predictor"/> (float: the inference-only path; int8: the integer network) against the float network's
/// training forward pass and a direct <see cref="QuantizedNetwork.Predict(ReadOnlySpan{float}, int, Span{float}, int)"/>.
/// Batch 1 and 64, 1 and 2 threads; MemoryDiagnoser shows the bytes allocated per call.
/// </summary>
[MemoryDiagnoser]
[MedianColumn]
public class PredictorBenchmarks
{
    private Sequential _network = null!;
    private QuantizedNetwork _quantized = null!;
    private Predictor _float = null!, _int8 = null!;
    private FloatTensor _input = null!;
    private float[] _logits = null!;

    /// <summary>Samples per call.</summary>
    [Params(1, 64)]
    public int Batch { get; set; }

    /// <summary>Threads one call may use.</summary>
    [Params(1, 2)]
    public int Threads { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _network = SeedNetwork.Create(seed: 1);
        _network.Threads = Threads;
        _input = BenchmarkInputs.Images(Batch);
        _quantized = Quantizer.Quantize(_network, new InMemoryBatches(BenchmarkInputs.Images(64).Data.ToArray(), [1, 32, 32]), 64, 0f, 1f);
        var options = new PredictorOptions { Threads = Threads };
        _float = Predictor.FromNetwork(_network, [1, 32, 32], 0f, 1f, options);
        _int8 = Predictor.FromNetwork(_quantized, options);
        _logits = new float[Batch * 10];
    }

    /// <summary>Float logits through the training forward pass (what embedding apps called before the Predictor).</summary>
    [Benchmark(Baseline = true)]
    public FloatTensor FloatTrainingForward() => _network.Forward(_input);

    /// <summary>Float logits through the Predictor's inference-only path.</summary>
    [Benchmark]
    public float[] FloatPredictor()
    {
        _float.Predict(_input.Data, Batch, _logits);
        return _logits;
    }

    /// <summary>Int8 logits from the integer network called directly.</summary>
    [Benchmark]
    public float[] Int8Direct()
    {
        _quantized.Predict(_input.Data, Batch, _logits, Threads);
        return _logits;
    }

    /// <summary>Int8 logits through the Predictor.</summary>
    [Benchmark]
    public float[] Int8Predictor()
    {
        _int8.Predict(_input.Data, Batch, _logits);
        return _logits;
    }
}
