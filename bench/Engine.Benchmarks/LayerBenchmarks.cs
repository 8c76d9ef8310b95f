using BenchmarkDotNet.Attributes;
using Engine.Kernels;
using Engine.Layers;
using Engine.Quantization;
using Engine.Tensors;

namespace Engine.Benchmarks;

/// <summary>
/// Every layer of the seed network on its own, at the shapes it sees in the network (batch 64, one thread): the float
/// forward and backward passes and the int8 forward pass. ReLUs are separate float layers but fused into the int8
/// convolutions and linear layers, so their int8 rows cost nothing. Multiply-accumulates per sample: conv1 0.29 M,
/// conv2 18.87 M, fc1 0.52 M, fc2 1.3 k.
/// </summary>
[MemoryDiagnoser]
[MedianColumn]
public class LayerBenchmarks
{
    private Layer _layer = null!;
    private FloatTensor _input = null!, _outputGradient = null!;
    private QuantizedLayer? _quantized;
    private byte[] _codes = null!, _int8Output = null!;
    private int[] _sampleShape = null!;
    private readonly QuantizedWorkspace _workspace = new();

    /// <summary>The seed network's layer names.</summary>
    [Params("conv1", "relu1", "conv2", "relu2", "pool", "fc1", "relu3", "fc2")]
    public string Layer { get; set; } = "conv1";

    private const int Batch = 64;

    [GlobalSetup]
    public void Setup()
    {
        Sequential network = SeedNetwork.Create(seed: 1);
        network.Threads = 1;
        FloatTensor images = BenchmarkInputs.Images(Batch);
        QuantizedNetwork quantized = Quantizer.Quantize(network, new Engine.Data.InMemoryBatches(images.Data.ToArray(), [1, 32, 32]), Batch, 0f, 1f);
        // The float input of the layer: run the network up to it.
        FloatTensor x = images;
        foreach ((string name, Layer layer) in network.Layers)
        {
            if (name == Layer)
            {
                _layer = layer;
                break;
            }
            x = layer.Forward(x);
        }
        _input = new FloatTensor(x.Shape.ToArray());
        x.Data.CopyTo(_input.Data);
        FloatTensor output = _layer.Forward(_input);
        _outputGradient = new FloatTensor(output.Shape.ToArray());
        var random = new SeededRandom(5);
        for (int i = 0; i < _outputGradient.Length; i++)
        {
            _outputGradient.Data[i] = random.NextUniform(-1f, 1f);
        }
        _layer.ComputeInputGradient = Layer != "conv1";

        // The int8 input: the codes the quantized network feeds this layer (the trace's entry before it).
        var trace = quantized.Trace(images.Data, Batch);
        int index = quantized.Layers.ToList().FindIndex(l => l.Name == Layer);
        if (index >= 0)
        {
            _quantized = quantized.Layers[index];
            _codes = trace[index].Codes;
            _sampleShape = trace[index].SampleShape;
            _int8Output = new byte[trace[index + 1].Codes.Length];
        }
    }

    /// <summary>Float forward pass.</summary>
    [Benchmark(Baseline = true)]
    public FloatTensor FloatForward() => _layer.Forward(_input);

    /// <summary>Float backward pass (parameter gradients, and the input gradient except for conv1).</summary>
    [Benchmark]
    public FloatTensor? FloatBackward() => _layer.Backward(_outputGradient);

    /// <summary>Int8 forward pass (absent for the ReLUs fused into the layer before them).</summary>
    [Benchmark]
    public byte[]? Int8Forward()
    {
        _quantized?.Forward(_codes, _sampleShape, Batch, _int8Output, _workspace);
        return _quantized is null ? null : _int8Output;
    }
}
