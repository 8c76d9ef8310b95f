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
public sealed unsafe class Linear : WeightedLayer
{
    private readonly FloatTensor _output = new(0);
    private readonly FloatTensor _inputGradient = new(0);
    private FloatTensor? _input;
    private float[] _inferenceWeights = [];   // W^T [in, out] packed as GEMM panels by PrepareInference; read-only afterwards

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
    public override void PrepareInference()
    {
        if (GemmF32.HasAvx2Fma)
        {
            // The GEMM's right operand is W^T [in, out]; transpose once, then pack it into the micro-kernel's panels.
            var transposed = new float[InFeatures * OutFeatures];
            ReadOnlySpan<float> w = Weight.Value.Data;
            for (int o = 0; o < OutFeatures; o++)
            {
                for (int i = 0; i < InFeatures; i++)
                {
                    transposed[i * OutFeatures + o] = w[o * InFeatures + i];
                }
            }
            var packed = new float[GemmF32.PanelsLength(InFeatures, OutFeatures)];
            GemmF32.PackPanels(transposed, OutFeatures, InFeatures, OutFeatures, packed);
            _inferenceWeights = packed;
        }
    }

    /// <summary>
    /// Inference: y = x W^T + b, the batch's rows packed and multiplied by the weights packed once in
    /// <see cref="PrepareInference"/> (so no call copies the weights, the cost that makes the training pass take dot
    /// products for small batches). Every output is the same sequence of fused multiply-adds over the inputs whatever the
    /// batch size, so results do not depend on how a batch is split between threads. With
    /// <see cref="InferenceWorkspace.LayerThreads"/> above 1 (batch 1), threads take disjoint 16-column panels.
    /// </summary>
    public override void Infer(ReadOnlySpan<float> input, ReadOnlySpan<int> sampleShape, int samples, Span<float> output,
        InferenceWorkspace workspace)
    {
        if (sampleShape.Length != 1 || sampleShape[0] != InFeatures)
        {
            throw new ArgumentException($"{Description}: expected a sample [{InFeatures}], got {FloatTensor.Format(sampleShape)}.");
        }
        if (GemmF32.HasAvx2Fma)
        {
            if (_inferenceWeights.Length < GemmF32.PanelsLength(InFeatures, OutFeatures))
            {
                throw new InvalidOperationException($"{Description}: PrepareInference was not called after the weights were set.");
            }
            if (samples == 1)
            {
                // One sample (batch-1 latency): no packing, several output panels' FMA chains at once, and the panels
                // split between threads only where the layer is large enough to pay for the hand-off.
                int threads = workspace.SplitThreads((long)InFeatures * OutFeatures);
                fixed (float* x = input, b = _inferenceWeights, y = output)
                {
                    WorkPartition.Run(threads, OutFeatures, GemmF32.PanelWidth, new RowPanelsWork(x, b, y, InFeatures));
                }
            }
            else
            {
                InferRows(input, samples, output, workspace);
            }
        }
        else
        {
            GemmF32.Multiply(false, true, samples, OutFeatures, InFeatures, input, InFeatures, Weight.Value.Data, InFeatures,
                output, OutFeatures, accumulate: false, GemmF32.Best);
        }
        ReadOnlySpan<float> bias = Bias.Value.Data;
        for (int n = 0; n < samples; n++)
        {
            Span<float> row = output.Slice(n * OutFeatures, OutFeatures);
            TensorPrimitives.Add(row, bias, row);
        }
    }

    // y[start..end) of one sample from the weight panels [start, end) (start a multiple of the panel width).
    private readonly struct RowPanelsWork(float* x, float* weights, float* output, int inFeatures) : IPartitionedWork
    {
        public void Invoke(int partition, int start, int end) =>
            GemmF32.MultiplyRowPrepacked(end - start, inFeatures, new ReadOnlySpan<float>(x, inFeatures),
                new ReadOnlySpan<float>(weights + (long)start * inFeatures, GemmF32.PanelsLength(inFeatures, end - start)),
                new Span<float>(output + start, end - start), accumulate: false, GemmF32.Best == KernelVariant.Avx512 ? KernelVariant.Avx512 : KernelVariant.Avx2Fma);
    }

    // Several samples: the rows packed for the 6 x 16 micro-kernel.
    private void InferRows(ReadOnlySpan<float> input, int samples, Span<float> output, InferenceWorkspace workspace)
    {
        Span<float> rows = workspace.Packed(GemmF32.PackedRowsLength(samples, InFeatures));
        GemmF32.PackRows(input, InFeatures, samples, InFeatures, rows);
        if (workspace.LayerThreads > 1)
        {
            fixed (float* a = rows, b = _inferenceWeights, y = output)
            {
                WorkPartition.Run(workspace.LayerThreads, OutFeatures, GemmF32.PanelWidth,
                    new PanelColumnsWork(a, rows.Length, b, y, samples, InFeatures, OutFeatures));
            }
        }
        else
        {
            GemmF32.MultiplyPrepacked(samples, OutFeatures, InFeatures, rows, _inferenceWeights, output, OutFeatures, accumulate: false);
        }
    }

    // y[:, start..end) from the packed rows and the weight panels [start, end) (whole panels: start is a multiple of the
    // panel width, so panel j0 / width begins at j0 k in the packed weights).
    private readonly struct PanelColumnsWork(float* rows, int rowsLength, float* weights, float* output, int samples, int inFeatures,
        int outFeatures) : IPartitionedWork
    {
        public void Invoke(int partition, int start, int end)
        {
            int panelsLength = GemmF32.PanelsLength(inFeatures, end - start);
            GemmF32.MultiplyPrepacked(samples, end - start, inFeatures, new ReadOnlySpan<float>(rows, rowsLength),
                new ReadOnlySpan<float>(weights + (long)start * inFeatures, panelsLength),
                new Span<float>(output + start, (samples - 1) * outFeatures + end - start), outFeatures, accumulate: false);
        }
    }

    // y[n, o] = W[o, :] . x[n, :] for outputs [start, end): partitions own disjoint output columns (pointers: the work
    // crosses threads, spans cannot).
    private readonly struct DotWork(float* weight, float* input, float* output, int inFeatures, int outFeatures, int samples) : IPartitionedWork
    {
        public void Invoke(int partition, int start, int end)
        {
            for (int n = 0; n < samples; n++)
            {
                var x = new ReadOnlySpan<float>(input + (long)n * inFeatures, inFeatures);
                for (int o = start; o < end; o++)
                {
                    output[(long)n * outFeatures + o] = TensorPrimitives.Dot(new ReadOnlySpan<float>(weight + (long)o * inFeatures, inFeatures), x);
                }
            }
        }
    }

    /// <inheritdoc/>
    public override FloatTensor Forward(FloatTensor input)
    {
        if (input.Shape.Length != 2 || input.Dim(1) != InFeatures)
        {
            OutputShape(input.Shape);               // throws with the message
        }
        int batch = input.Dim(0), threads = Threads;
        _output.Resize([batch, OutFeatures]);       // y: [N, out]
        if (batch <= MatrixVectorBatch)
        {
            // A few samples: one dot product per output reads W once per sample; the GEMM would first pack all of W
            // (2 MB for fc1), which costs more than the products themselves (batch-1 latency).
            fixed (float* w = Weight.Value.Data, x = input.Data, y = _output.Data)
            {
                WorkPartition.Run(threads, OutFeatures, 8, new DotWork(w, x, y, InFeatures, OutFeatures, batch));
            }
        }
        else
        {
            GemmF32.MultiplyParallel(threads, false, true, batch, OutFeatures, InFeatures,
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

    /// <inheritdoc/>
    public override FloatTensor? Backward(FloatTensor outputGradient)
    {
        FloatTensor input = RequireForward(_input, Description);
        RequireGradientShape(outputGradient, _output, Description);
        int batch = input.Dim(0), threads = Threads;
        ReadOnlySpan<float> dy = outputGradient.Data;
        GemmF32.MultiplyParallel(threads, true, false, OutFeatures, InFeatures, batch,
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
        GemmF32.MultiplyParallel(threads, false, false, batch, InFeatures, OutFeatures,
            dy, OutFeatures, Weight.Value.Data, InFeatures, _inputGradient.Data, InFeatures, accumulate: false);
        return _inputGradient;
    }

    /// <inheritdoc/>
    public override string ToString() => $"Linear(in_features={InFeatures}, out_features={OutFeatures})";
}
