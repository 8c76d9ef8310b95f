using System.Numerics.Tensors;
using Engine.Kernels;
using Engine.Tensors;

namespace Engine.Layers;

/// <summary>
/// Fully connected layer over [N, in], PyTorch's Linear:
/// <code>
///   forward:  y  = x W^T + b       x: [N, in], W: [out, in], y: [N, out]
///   backward: dW += dy^T x         dy: [N, out]
///             db += sum over rows of dy
///             dx  = dy W           dx: [N, in]
/// </code>
/// Each product is one GEMM split across threads by output tiles.
/// </summary>
public sealed class Linear : WeightedLayer
{
    private readonly FloatTensor _output = new(0);
    private readonly FloatTensor _inputGradient = new(0);
    private FloatTensor? _input;

    /// <summary>A layer with zero-initialised parameters; call <see cref="WeightedLayer.Initialize"/> or load weights.</summary>
    public Linear(int inFeatures, int outFeatures)
        : base(new Parameter("weight", Positive(outFeatures), Positive(inFeatures)), new Parameter("bias", outFeatures))
    {
        InFeatures = inFeatures;
        OutFeatures = outFeatures;
    }

    /// <summary>Input features.</summary>
    public int InFeatures { get; }

    /// <summary>Output features (units).</summary>
    public int OutFeatures { get; }

    /// <inheritdoc/>
    public override int[] OutputShape(ReadOnlySpan<int> inputShape)
    {
        if (inputShape.Length != 2 || inputShape[1] != InFeatures)
        {
            throw new ArgumentException($"{this}: expected an input [N, {InFeatures}], got {FloatTensor.Format(inputShape)}.");
        }
        return [inputShape[0], OutFeatures];
    }

    /// <inheritdoc/>
    public override FloatTensor Forward(FloatTensor input)
    {
        if (input.Shape.Length != 2 || input.Dim(1) != InFeatures)
        {
            OutputShape(input.Shape);               // throws with the message
        }
        int batch = input.Dim(0);
        _output.Resize([batch, OutFeatures]);       // y: [N, out]
        if (batch <= MatrixVectorBatch)
        {
            // A few samples: one dot product per output reads W once per sample; the GEMM would first pack all of W
            // (2 MB for fc1), which costs more than the products themselves (batch-1 latency).
            WorkPartition.Run(OutFeatures, 8, new DotWork(Weight.Value, input, _output, InFeatures, OutFeatures, batch));
        }
        else
        {
            GemmF32.MultiplyParallel(false, true, batch, OutFeatures, InFeatures,
                input.Data, InFeatures, Weight.Value.Data, InFeatures, _output.Data, OutFeatures, accumulate: false);
        }
        ReadOnlySpan<float> bias = Bias.Value.Data;
        for (int n = 0; n < batch; n++)
        {
            Span<float> row = _output.Data.Slice(n * OutFeatures, OutFeatures);
            TensorPrimitives.Add(row, bias, row);
        }
        _input = input;
        return _output;
    }

    // Up to this many samples, the forward pass takes dot products instead of a GEMM.
    private const int MatrixVectorBatch = 4;

    // y[n, o] = W[o, :] . x[n, :] for outputs [start, end): partitions own disjoint output columns.
    private readonly struct DotWork(FloatTensor weight, FloatTensor input, FloatTensor output, int inFeatures, int outFeatures, int batch) : IPartitionedWork
    {
        public void Invoke(int partition, int start, int end)
        {
            for (int n = 0; n < batch; n++)
            {
                ReadOnlySpan<float> x = input.Data.Slice(n * inFeatures, inFeatures);
                Span<float> y = output.Data.Slice(n * outFeatures, outFeatures);
                for (int o = start; o < end; o++)
                {
                    y[o] = TensorPrimitives.Dot(weight.Data.Slice(o * inFeatures, inFeatures), x);
                }
            }
        }
    }

    /// <inheritdoc/>
    public override FloatTensor? Backward(FloatTensor outputGradient)
    {
        FloatTensor input = RequireForward(_input, Description);
        RequireGradientShape(outputGradient, _output, Description);
        int batch = input.Dim(0);
        ReadOnlySpan<float> dy = outputGradient.Data;
        GemmF32.MultiplyParallel(true, false, OutFeatures, InFeatures, batch,
            dy, OutFeatures, input.Data, InFeatures, Weight.Gradient.Data, InFeatures, accumulate: true);
        Span<float> db = Bias.Gradient.Data;
        for (int n = 0; n < batch; n++)
        {
            TensorPrimitives.Add(db, dy.Slice(n * OutFeatures, OutFeatures), db);
        }
        if (!ComputeInputGradient)
        {
            return null;
        }
        _inputGradient.Resize(input.Shape);         // dx: [N, in]
        GemmF32.MultiplyParallel(false, false, batch, InFeatures, OutFeatures,
            dy, OutFeatures, Weight.Value.Data, InFeatures, _inputGradient.Data, InFeatures, accumulate: false);
        return _inputGradient;
    }

    /// <inheritdoc/>
    public override string ToString() => $"Linear(in_features={InFeatures}, out_features={OutFeatures})";
}
