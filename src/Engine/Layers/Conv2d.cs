using System.Numerics.Tensors;
using Engine.Kernels;
using Engine.Tensors;

namespace Engine.Layers;

/// <summary>
/// 2-D convolution (cross-correlation, as PyTorch's Conv2d) over [N, Cin, H, W] with a square kernel, stride and zero
/// padding. Per sample n, with col = im2col(x[n]) of shape [Cin k k, OH OW]:
/// <code>
///   forward:  y[n]  = W col + b                  W: [Cout, Cin k k], y[n]: [Cout, OH OW]
///   backward: dW   += dy[n] col^T                 dy[n]: [Cout, OH OW]
///             db   += sum over pixels of dy[n]
///             dx[n] = col2im(W^T dy[n])
/// </code>
/// The batch is split across threads; each thread owns its im2col buffer and its partial dW and db, which are summed
/// in a fixed order afterwards, so results do not depend on scheduling. Stride-1 layers whose output rows are whole
/// vectors compute dW and db without im2col instead (<see cref="AccumulateWeightGradient"/>), split by output channel.
/// </summary>
public sealed unsafe class Conv2d : WeightedLayer
{
    private readonly FloatTensor _output = new(0);
    private readonly FloatTensor _inputGradient = new(0);
    private FloatTensor? _input;
    private float[][] _columns = [];          // per partition: [Cin k k, OH OW], or a chunk of it as 16-column panels
    private float[] _packedWeights = [];      // W [Cout, Cin k k] packed for the micro-kernel, once per forward pass
    private int[][] _offsets = [];            // per partition: [Cin k k] tap offsets of the implicit convolution

    // Output pixels whose columns are built and multiplied together: 128 x 288 floats for conv2, 144 KiB, fit L2.
    private const int PixelsPerChunk = 128;
    private float[][] _columnGradients = [];  // per partition: [Cin k k, OH OW]
    private float[][] _weightGradients = [];  // per partition: [Cout, Cin k k]
    private float[][] _biasGradients = [];    // per partition: [Cout]
    private float[] _inferenceWeights = [];    // W packed for the micro-kernel by PrepareInference; read-only afterwards
    private float[] _inferenceWinograd = [];   // W Winograd-transformed by PrepareInference; read-only afterwards
    private float[] _winogradFilters = [];     // W Winograd-transformed, once per forward pass
    private float[] _winogradBackFilters = []; // rot180(W)^T Winograd-transformed, once per backward pass (input gradient)
    private float[] _winogradFilterScratch = [];
    private float[][] _winogradPadded = [];    // per partition: the padded image (or output gradient)
    private float[][] _winogradChunks = [];    // per partition (or per chunk worker): transformed tiles and products

    /// <summary>A convolution with zero-initialised parameters; call <see cref="WeightedLayer.Initialize"/> or load weights.</summary>
    public Conv2d(int inChannels, int outChannels, int kernelSize, int stride = 1, int padding = 0)
        : base(new Parameter("weight", Positive(outChannels), Positive(inChannels), Positive(kernelSize), kernelSize), new Parameter("bias", outChannels))
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(stride);
        ArgumentOutOfRangeException.ThrowIfNegative(padding);
        InChannels = inChannels;
        OutChannels = outChannels;
        KernelSize = kernelSize;
        Stride = stride;
        Padding = padding;
    }

    /// <summary>Input channels, Cin.</summary>
    public int InChannels { get; }

    /// <summary>Output channels (filters), Cout.</summary>
    public int OutChannels { get; }

    /// <summary>Kernel side, k.</summary>
    public int KernelSize { get; }

    /// <summary>Step between output pixels.</summary>
    public int Stride { get; }

    /// <summary>Zero padding on each side.</summary>
    public int Padding { get; }

    /// <summary>Which algorithm the forward pass, inference and the input gradient use (tests and benchmarks force one).</summary>
    internal ConvAlgorithm Algorithm { get; set; } = ConvAlgorithm.Auto;

    /// <summary>Input channels from which <see cref="ConvAlgorithm.Auto"/> takes Winograd (measured, docs/float-engine.md).</summary>
    internal const int WinogradMinInChannels = 8;

    /// <summary>Input times output channels from which <see cref="ConvAlgorithm.Auto"/> takes Winograd (measured, docs/float-engine.md).</summary>
    internal const int WinogradMinChannelPairs = 128;

    /// <summary>
    /// The rule of <see cref="ConvAlgorithm.Auto"/>: Winograd F(4 x 4, 3 x 3) for 3 x 3, stride-1 convolutions with at least
    /// <see cref="WinogradMinInChannels"/> input channels and <see cref="WinogradMinChannelPairs"/> channel pairs. The
    /// transforms cost in proportion to Cin + Cout, the multiplications they save in proportion to Cin Cout; measured
    /// on one 32 x 32 image (WinogradChannelsBenchmarks): 1 x 32 (conv1), 4 x 8 and 8 x 8 run faster direct, 8 x 16 and
    /// 16 x 16 faster by Winograd, conv2's 32 x 64 about twice as fast.
    /// </summary>
    internal bool PrefersWinograd => InChannels >= WinogradMinInChannels && InChannels * OutChannels >= WinogradMinChannelPairs;

    // Whether this layer runs Winograd on geometry g; the rule reads only the layer's shape, so PrepareInference knows it.
    private bool UsesWinograd(in ConvGeometry g) => Algorithm switch
    {
        ConvAlgorithm.Direct => false,
        ConvAlgorithm.Winograd => WinogradF32.Supports(g),
        _ => PrefersWinograd && WinogradF32.Supports(g),
    };

    // Same rule without the image size: Winograd filters are needed for any image this layer may see.
    private bool MayUseWinograd => UsesWinograd(new ConvGeometry(InChannels, KernelSize, KernelSize, KernelSize, KernelSize, Stride, Stride, Padding, Padding));

    // The geometry of the input gradient as a convolution: dy [Cout, OH, OW] with rot180(W)^T and padding k - 1 - pad.
    private ConvGeometry BackwardDataGeometry(in ConvGeometry g) =>
        new(OutChannels, g.OutHeight, g.OutWidth, KernelSize, KernelSize, 1, 1, KernelSize - 1 - Padding, KernelSize - 1 - Padding);

    private void TransformFilters(ref float[] transformed, bool flipTranspose)
    {
        int cout = flipTranspose ? InChannels : OutChannels, cin = flipTranspose ? OutChannels : InChannels;
        if (transformed.Length != WinogradF32.TransformedFiltersLength(cout, cin))
        {
            transformed = new float[WinogradF32.TransformedFiltersLength(cout, cin)];
        }
        if (_winogradFilterScratch.Length < WinogradF32.FilterScratchLength(cout, cin))
        {
            _winogradFilterScratch = new float[WinogradF32.FilterScratchLength(cout, cin)];
        }
        WinogradF32.TransformFilters(Weight.Value.Data, OutChannels, InChannels, flipTranspose, transformed, _winogradFilterScratch);
    }

    private ConvGeometry Geometry(ReadOnlySpan<int> inputShape)
    {
        if (inputShape.Length != 4 || inputShape[1] != InChannels)
        {
            throw new ArgumentException($"{this}: expected an input [N, {InChannels}, H, W], got {FloatTensor.Format(inputShape)}.");
        }
        var g = new ConvGeometry(InChannels, inputShape[2], inputShape[3], KernelSize, KernelSize, Stride, Stride, Padding, Padding);
        g.Validate(Description);
        return g;
    }

    /// <inheritdoc/>
    public override int[] OutputShape(ReadOnlySpan<int> inputShape)
    {
        ConvGeometry g = Geometry(inputShape);
        return [inputShape[0], OutChannels, g.OutHeight, g.OutWidth];
    }

    /// <inheritdoc/>
    public override void PrepareInference()
    {
        int k = WeightsPerNeuron;
        if (GemmF32.HasAvx2Fma)
        {
            var packed = new float[GemmF32.PackedRowsLength(OutChannels, k)];
            GemmF32.PackRows(Weight.Value.Data, k, OutChannels, k, packed);
            _inferenceWeights = packed;
            _inferenceDirectWeights = UsesDirectKernel ? Weight.Value.Data.ToArray() : [];
        }
        if (MayUseWinograd)
        {
            float[] transformed = [];
            TransformFilters(ref transformed, flipTranspose: false);
            _inferenceWinograd = transformed;
        }
    }

    // The direct kernel's weights ([Cout, C k k], as stored), copied by PrepareInference when the direct kernel applies.
    private float[] _inferenceDirectWeights = [];

    // Whether the shallow-filter direct kernel computes this layer's raw convolution (it needs FMA for the result to be
    // the GEMM's bit for bit; depth and stride do not depend on the input size).
    private bool UsesDirectKernel => GemmF32.HasAvx2Fma && Stride == 1 && WeightsPerNeuron <= DirectConvF32.MaxDepth;

    // How the raw convolution of one sample, W col(x) without the bias, is computed at inference.
    private enum RawKernel
    {
        Winograd,        // WinogradF32 F(4 x 4, 3 x 3): 3 x 3 stride-1 filters with enough channels (conv2), see UsesWinograd
        Direct,          // DirectConvF32 over the padded image: shallow filters (conv1)
        Implicit,        // ImplicitConvF32 over the padded image: stride 1, output width a multiple of 16 (conv2)
        Im2ColPanels,    // im2col panels and the pre-packed GEMM: other shapes, with AVX2 + FMA
        Portable,        // im2col and the portable GEMM: CPUs without AVX2 + FMA
    }

    private RawKernel RawKernelFor(in ConvGeometry g) =>
        !GemmF32.HasAvx2Fma ? RawKernel.Portable
        : UsesWinograd(g) ? RawKernel.Winograd
        : UsesDirectKernel && DirectConvF32.Supports(g) ? RawKernel.Direct
        : ImplicitConvF32.Supports(g) ? RawKernel.Implicit
        : RawKernel.Im2ColPanels;

    // Threads one sample's raw convolution is split between (InferenceWorkspace.SplitThreads: only where it pays).
    private int SplitThreads(in ConvGeometry g, InferenceWorkspace workspace) =>
        workspace.SplitThreads((long)OutChannels * g.ColumnRows * g.ColumnCols);

    private ConvGeometry InferenceGeometry(ReadOnlySpan<int> sampleShape)
    {
        if (sampleShape.Length != 3 || sampleShape[0] != InChannels)
        {
            throw new ArgumentException($"{Description}: expected a sample [{InChannels}, H, W], got {FloatTensor.Format(sampleShape)}.");
        }
        var g = new ConvGeometry(InChannels, sampleShape[1], sampleShape[2], KernelSize, KernelSize, Stride, Stride, Padding, Padding);
        g.Validate(Description);
        if (GemmF32.HasAvx2Fma && (_inferenceWeights.Length < GemmF32.PackedRowsLength(OutChannels, g.ColumnRows)
            || (UsesDirectKernel && _inferenceDirectWeights.Length != OutChannels * g.ColumnRows)))
        {
            throw new InvalidOperationException($"{Description}: PrepareInference was not called after the weights were set.");
        }
        if (UsesWinograd(g) && _inferenceWinograd.Length != WinogradF32.TransformedFiltersLength(OutChannels, InChannels))
        {
            throw new InvalidOperationException($"{Description}: PrepareInference was not called after the weights or the algorithm were set.");
        }
        return g;
    }

    /// <summary>
    /// Inference, sample by sample: y[n] = W col(x[n]) + b, the raw product by the direct kernel for shallow filters, else
    /// the implicit convolution where it applies (the image padded once, taps read in place), else im2col panels and the
    /// packed GEMM, else im2col and the portable GEMM. With <see cref="InferenceWorkspace.LayerThreads"/> above 1 (batch 1
    /// on several threads) a sample large enough to pay for the hand-off has its output rows split between threads;
    /// each row is computed the same way either way, so the result does not depend on the split.
    /// </summary>
    public override void Infer(ReadOnlySpan<float> input, ReadOnlySpan<int> sampleShape, int samples, Span<float> output,
        InferenceWorkspace workspace)
    {
        ConvGeometry g = InferenceGeometry(sampleShape);
        int pixels = g.ColumnCols, cout = OutChannels, outSize = cout * pixels;
        for (int n = 0; n < samples; n++)
        {
            Span<float> y = output.Slice(n * outSize, outSize);      // y[n]: [Cout, OH OW]
            RawSample(input.Slice(n * g.InputSize, g.InputSize), g, y, workspace);
            ReadOnlySpan<float> bias = Bias.Value.Data;
            for (int c = 0; c < cout; c++)
            {
                Span<float> row = y.Slice(c * pixels, pixels);
                TensorPrimitives.Add(row, bias[c], row);
            }
        }
    }

    // y = the raw Winograd convolution of one image (bias added by the caller), its tile chunks split over LayerThreads
    // where that pays (WinogradF32.ThreadsFor): each chunk is computed the same way whichever thread takes it, so the
    // result does not depend on the split.
    private void InferWinograd(ReadOnlySpan<float> image, in ConvGeometry g, Span<float> y, InferenceWorkspace workspace)
    {
        int threads = WinogradF32.ThreadsFor(g, workspace.LayerThreads);
        int chunks = WinogradF32.ChunkCount(g), parts = WorkPartition.PartitionCount(threads, chunks);
        int paddedLength = WinogradF32.PaddedLength(g), chunkLength = WinogradF32.ChunkScratchLength(InChannels, OutChannels);
        Span<float> scratch = workspace.Scratch(paddedLength + parts * chunkLength);
        WinogradF32.Prepare(image, g, scratch);
        fixed (float* w = _inferenceWinograd, py = y, ps = scratch)
        {
            WorkPartition.Run(threads, chunks, 1,
                new WinogradChunksWork(g, w, _inferenceWinograd.Length, OutChannels, null, 0, py, ps, paddedLength, ps + paddedLength, chunkLength));
        }
    }

    // Tile chunks [start, end) of one prepared image into y; partition p uses its own chunk scratch.
    private readonly struct WinogradChunksWork(ConvGeometry g, float* filters, int filtersLength, int cout, float* bias, int biasLength,
        float* y, float* padded, int paddedLength, float* chunks, int chunkLength) : IPartitionedWork
    {
        public void Invoke(int partition, int start, int end) =>
            WinogradF32.Compute(g, new ReadOnlySpan<float>(filters, filtersLength), cout, new ReadOnlySpan<float>(bias, biasLength), relu: false,
                new ReadOnlySpan<float>(padded, paddedLength), new Span<float>(y, cout * g.ColumnCols),
                new Span<float>(chunks + (long)partition * chunkLength, chunkLength), start, end - start, WinogradF32.Best);
    }

    /// <summary>Whether <see cref="InferFused"/> runs samples of <paramref name="sampleShape"/> with this epilogue here.</summary>
    internal bool CanFuse(ReadOnlySpan<int> sampleShape, FusedEpilogue epilogue)
    {
        if (sampleShape.Length != 3 || sampleShape[0] != InChannels || epilogue.Pool < 1)
        {
            return false;
        }
        var g = new ConvGeometry(InChannels, sampleShape[1], sampleShape[2], KernelSize, KernelSize, Stride, Stride, Padding, Padding);
        g.Validate(Description);
        return RawKernelFor(g) is RawKernel.Winograd or RawKernel.Direct or RawKernel.Implicit
            && g.OutHeight >= epilogue.Pool && g.OutWidth >= epilogue.Pool;
    }

    /// <summary>
    /// Inference of this convolution and the layers after it that <paramref name="epilogue"/> names (a ReLU, an
    /// AvgPool2d(k, k)), as one step: the raw convolution of a band of output rows (whole pooling windows, about 32 KiB
    /// for all channels) lands in a per-thread buffer that stays in L1, and <see cref="ConvEpilogueF32"/> adds the bias,
    /// applies the ReLU and pools it in one pass, writing each final activation once. Equal bit for bit to
    /// <see cref="Infer"/> followed by the ReLU and pooling layers (the same operations in the same order). Output:
    /// [samples, Cout, OH / k, OW / k]. With <see cref="InferenceWorkspace.LayerThreads"/> above 1 the bands of a large
    /// enough sample are split between threads, each band computed the same way either way.
    /// </summary>
    internal void InferFused(ReadOnlySpan<float> input, ReadOnlySpan<int> sampleShape, int samples, Span<float> output,
        InferenceWorkspace workspace, FusedEpilogue epilogue)
    {
        if (!CanFuse(sampleShape, epilogue))
        {
            throw new InvalidOperationException($"{Description}: fused inference does not apply to samples {FloatTensor.Format(sampleShape)} with {epilogue}.");
        }
        ConvGeometry g = InferenceGeometry(sampleShape);
        RawKernel kernel = RawKernelFor(g);
        int pool = epilogue.Pool, outW = g.OutWidth, cout = OutChannels;
        int pooledRows = g.OutHeight / pool, usedRows = pooledRows * pool, outSize = cout * pooledRows * (outW / pool);
        if (kernel == RawKernel.Winograd)
        {
            // Winograd transforms whole tiles of the image, not bands of rows: the raw convolution of one sample (256 KiB
            // for conv2) goes to the band buffer, which stays in L2, and one epilogue pass adds the bias, applies the ReLU
            // and pools it. The same operations as Infer followed by the ReLU and pooling layers, so the same bits.
            Span<float> raw = workspace.Band(cout * g.ColumnCols);
            for (int n = 0; n < samples; n++)
            {
                InferWinograd(input.Slice(n * g.InputSize, g.InputSize), g, raw, workspace);
                ConvEpilogueF32.Apply(raw, g.ColumnCols, cout, usedRows, outW, Bias.Value.Data, epilogue.Relu, pool,
                    output.Slice(n * outSize, outSize), pooledRows * (outW / pool), ConvEpilogueF32.Best);
            }
            return;
        }
        // Rows per band: whole windows, as many as keep the band's raw outputs near BandFloats (at least one window row).
        int bandRows = pool * Math.Max(1, Math.Min(pooledRows, BandFloats / Math.Max(1, cout * outW * pool)));
        int bands = (usedRows + bandRows - 1) / bandRows;
        int threads = Math.Min(SplitThreads(g, workspace), bands);
        int bandLength = cout * bandRows * outW;
        Span<float> bandScratch = workspace.Band(threads * bandLength);
        for (int n = 0; n < samples; n++)
        {
            Span<float> padded = workspace.Scratch(ImplicitConvF32.PaddedLength(g));
            Span<int> offsets = workspace.Offsets(g.ColumnRows);
            PrepareImage(kernel, input.Slice(n * g.InputSize, g.InputSize), g, padded, offsets);
            fixed (float* pp = padded, pb = bandScratch, py = output.Slice(n * outSize, outSize))
            fixed (int* po = offsets)
            {
                WorkPartition.Run(threads, bands, 1,
                    new FusedBandsWork(this, kernel, g, pp, po, pb, bandLength, bandRows, usedRows, py, epilogue));
            }
        }
    }

    /// <summary>
    /// Whether <see cref="InferChained"/> runs <paramref name="producer"/> (the direct kernel with its bias and
    /// <paramref name="producerEpilogue"/>'s ReLU, no pooling) on samples of <paramref name="producerSampleShape"/> straight
    /// into this layer's Winograd input, followed by this layer with <paramref name="epilogue"/>.
    /// </summary>
    internal bool CanChainAfter(Conv2d producer, ReadOnlySpan<int> producerSampleShape, FusedEpilogue producerEpilogue, FusedEpilogue epilogue)
    {
        if (producerEpilogue.Pool != 1 || producer.OutChannels != InChannels || !producer.CanFuse(producerSampleShape, producerEpilogue))
        {
            return false;
        }
        var g1 = new ConvGeometry(producer.InChannels, producerSampleShape[1], producerSampleShape[2], producer.KernelSize, producer.KernelSize,
            producer.Stride, producer.Stride, producer.Padding, producer.Padding);
        if (producer.RawKernelFor(g1) != RawKernel.Direct)
        {
            return false;
        }
        ReadOnlySpan<int> shape = [InChannels, g1.OutHeight, g1.OutWidth];
        if (!CanFuse(shape, epilogue))
        {
            return false;
        }
        var g = new ConvGeometry(InChannels, g1.OutHeight, g1.OutWidth, KernelSize, KernelSize, Stride, Stride, Padding, Padding);
        return RawKernelFor(g) == RawKernel.Winograd;
    }

    /// <summary>
    /// Whether the two steps <see cref="InferChained"/> replaces would split one sample of
    /// <paramref name="producerSampleShape"/> between threads (<see cref="InferenceWorkspace.LayerThreads"/> above 1 and
    /// enough work to pay for it). When neither would, chaining is the faster path on any thread count.
    /// </summary>
    internal bool SplitsUnchained(Conv2d producer, ReadOnlySpan<int> producerSampleShape, InferenceWorkspace workspace)
    {
        if (workspace.LayerThreads == 1)
        {
            return false;
        }
        ConvGeometry g1 = producer.InferenceGeometry(producerSampleShape);
        ConvGeometry g = InferenceGeometry([InChannels, g1.OutHeight, g1.OutWidth]);
        return producer.SplitThreads(g1, workspace) > 1 || WinogradF32.ThreadsFor(g, workspace.LayerThreads) > 1;
    }

    /// <summary>
    /// <paramref name="producer"/> (a shallow convolution on the direct kernel, + bias, ReLU per
    /// <paramref name="producerEpilogue"/>) and then this Winograd convolution with <paramref name="epilogue"/>, one sample
    /// at a time, on one thread: the producer writes each sample's activations straight into the zero-padded tile grid
    /// that Winograd's input transform reads (<see cref="WinogradF32.PaddedImageOffset"/>), so they are neither written
    /// out for the whole batch nor copied into the grid (<see cref="WinogradF32.Prepare"/>), and they stay in L2 between
    /// the two convolutions. The grid's border is zeroed once per call: the producer never writes it. Every value is
    /// computed by the same operations as <see cref="InferFused"/> of the producer followed by <see cref="InferFused"/>
    /// of this layer, so the same bits. Output: [samples, Cout, OH / k, OW / k].
    /// </summary>
    internal void InferChained(Conv2d producer, FusedEpilogue producerEpilogue, ReadOnlySpan<float> input, ReadOnlySpan<int> producerSampleShape,
        int samples, Span<float> output, InferenceWorkspace workspace, FusedEpilogue epilogue)
    {
        if (!CanChainAfter(producer, producerSampleShape, producerEpilogue, epilogue))
        {
            throw new InvalidOperationException($"{Description}: cannot run chained after {producer.Description} on samples {FloatTensor.Format(producerSampleShape)}.");
        }
        ConvGeometry g1 = producer.InferenceGeometry(producerSampleShape);
        ConvGeometry g = InferenceGeometry([InChannels, g1.OutHeight, g1.OutWidth]);
        int pool = epilogue.Pool, outW = g.OutWidth, cout = OutChannels;
        int pooledRows = g.OutHeight / pool, usedRows = pooledRows * pool, outSize = cout * pooledRows * (outW / pool);
        int paddedLength = WinogradF32.PaddedLength(g), chunkLength = WinogradF32.ChunkScratchLength(InChannels, cout);
        int inputPaddedLength = DirectConvF32.PaddedLength(g1), origin = WinogradF32.PaddedImageOffset(g);
        Span<float> scratch = workspace.Scratch(paddedLength + chunkLength + inputPaddedLength);
        Span<float> padded = scratch[..paddedLength], chunk = scratch.Slice(paddedLength, chunkLength);
        Span<float> inputPadded = scratch.Slice(paddedLength + chunkLength, inputPaddedLength);
        Span<float> raw = workspace.Band(cout * g.ColumnCols);
        padded.Clear();
        Span<float> activations = padded[origin..];
        for (int n = 0; n < samples; n++)
        {
            DirectConvF32.Pad(input.Slice(n * g1.InputSize, g1.InputSize), g1, inputPadded);
            DirectConvF32.Compute(g1, producer._inferenceDirectWeights, producer.OutChannels, inputPadded, 0, g1.OutHeight, activations,
                WinogradF32.PaddedChannelStride(g), DirectConvF32.Best, producer.Bias.Value.Data, producerEpilogue.Relu, WinogradF32.PaddedRowStride(g));
            WinogradF32.Compute(g, _inferenceWinograd, cout, default, relu: false, padded, raw, chunk, 0, WinogradF32.ChunkCount(g), WinogradF32.Best);
            ConvEpilogueF32.Apply(raw, g.ColumnCols, cout, usedRows, outW, Bias.Value.Data, epilogue.Relu, pool,
                output.Slice(n * outSize, outSize), pooledRows * (outW / pool), ConvEpilogueF32.Best);
        }
    }

    // Raw outputs per band of the fused path: 32 KiB, so a band stays in L1 between the convolution and the epilogue.
    private const int BandFloats = 8192;

    /// <summary>What follows a convolution in a fused inference step: a ReLU or not, then average pooling k x k (1: none).</summary>
    internal readonly record struct FusedEpilogue(bool Relu, int Pool);

    // Bands [start, end) of one prepared sample: raw convolution into this partition's band buffer, then the epilogue.
    private readonly struct FusedBandsWork(Conv2d layer, RawKernel kernel, ConvGeometry g, float* padded, int* offsets, float* bands,
        int bandLength, int bandRows, int usedRows, float* y, FusedEpilogue epilogue) : IPartitionedWork
    {
        public void Invoke(int partition, int start, int end)
        {
            int outW = g.OutWidth, pool = epilogue.Pool, cout = layer.OutChannels;
            int pooledPlane = usedRows / pool * (outW / pool);
            float* band = bands + (long)partition * bandLength;
            for (int b = start; b < end; b++)
            {
                int firstRow = b * bandRows, rows = Math.Min(bandRows, usedRows - firstRow), ldy = rows * outW;
                if (kernel == RawKernel.Direct && pool == 1)
                {
                    // Nothing to pool (conv1 + ReLU): the direct kernel adds the bias and applies the ReLU in registers
                    // and writes the final activations, with no band buffer at all.
                    int plane = g.ColumnCols;
                    DirectConvF32.Compute(g, layer._inferenceDirectWeights, cout, new ReadOnlySpan<float>(padded, ImplicitConvF32.PaddedLength(g)),
                        firstRow, rows, new Span<float>(y + (long)firstRow * outW, (cout - 1) * plane + rows * outW), plane, DirectConvF32.Best,
                        layer.Bias.Value.Data, epilogue.Relu);
                    continue;
                }
                layer.RawRows(kernel, g, padded, offsets, firstRow, rows, band, ldy);
                float* target = y + (long)firstRow / pool * (outW / pool);
                ConvEpilogueF32.Apply(new ReadOnlySpan<float>(band, bandLength), ldy, cout, rows, outW, layer.Bias.Value.Data,
                    epilogue.Relu, pool, new Span<float>(target, (cout - 1) * pooledPlane + rows / pool * (outW / pool)), pooledPlane,
                    ConvEpilogueF32.Best);
            }
        }
    }

    // The raw convolution W col(x) of one sample into y [Cout, OH OW] (no bias), by the kernel RawKernelFor picks; rows
    // split between threads where that pays (SplitThreads).
    private void RawSample(ReadOnlySpan<float> image, in ConvGeometry g, Span<float> y, InferenceWorkspace workspace)
    {
        int k = g.ColumnRows, pixels = g.ColumnCols, cout = OutChannels;
        RawKernel kernel = RawKernelFor(g);
        switch (kernel)
        {
            case RawKernel.Winograd:
                InferWinograd(image, g, y, workspace);
                break;
            case RawKernel.Direct:
            case RawKernel.Implicit:
                Span<float> padded = workspace.Scratch(ImplicitConvF32.PaddedLength(g));
                Span<int> offsets = workspace.Offsets(k);
                PrepareImage(kernel, image, g, padded, offsets);
                fixed (float* py = y, pp = padded)
                fixed (int* po = offsets)
                {
                    WorkPartition.Run(SplitThreads(g, workspace), g.OutHeight, 1, new RawRowsWork(this, kernel, g, pp, po, py));
                }
                break;
            case RawKernel.Im2ColPanels:
                for (int j0 = 0; j0 < pixels; j0 += PixelsPerChunk)
                {
                    int count = Math.Min(PixelsPerChunk, pixels - j0);
                    Span<float> panels = workspace.Scratch(GemmF32.PanelsLength(k, count));
                    Im2ColF32.Im2ColPanels(image, g, j0, count, panels);
                    GemmF32.MultiplyPrepacked(cout, count, k, _inferenceWeights, panels, y[j0..], pixels, accumulate: false);
                }
                break;
            default:
                Span<float> col = workspace.Scratch(k * pixels);
                Im2ColF32.Im2Col(image, g, col);
                GemmF32.Multiply(false, false, cout, pixels, k, Weight.Value.Data, k, col, pixels, y, pixels, accumulate: false, GemmF32.Best);
                break;
        }
    }

    // The padded image (and, for the implicit convolution, its tap offsets) that RawRows reads.
    private static void PrepareImage(RawKernel kernel, ReadOnlySpan<float> image, in ConvGeometry g, Span<float> padded, Span<int> offsets)
    {
        if (kernel == RawKernel.Direct)
        {
            DirectConvF32.Pad(image, g, padded);
        }
        else
        {
            ImplicitConvF32.Prepare(image, g, padded, offsets);
        }
    }

    // Raw output rows [firstRow, + rowCount) of a prepared sample, channel c at y + c ldy (the one place where the direct
    // and implicit kernels are dispatched, for whole samples and fused bands alike).
    private void RawRows(RawKernel kernel, in ConvGeometry g, float* padded, int* offsets, int firstRow, int rowCount, float* y, int ldy)
    {
        int cout = OutChannels, outW = g.OutWidth, k = g.ColumnRows, paddedLength = ImplicitConvF32.PaddedLength(g);
        var ySpan = new Span<float>(y, (cout - 1) * ldy + rowCount * outW);
        if (kernel == RawKernel.Direct)
        {
            DirectConvF32.Compute(g, _inferenceDirectWeights, cout, new ReadOnlySpan<float>(padded, paddedLength), firstRow, rowCount,
                ySpan, ldy, DirectConvF32.Best);
            return;
        }
        KernelVariant variant = ImplicitConvF32.VariantFor(g);
        int width = ImplicitConvF32.PanelWidthOf(variant);   // divides OW, so rows are whole panels
        ImplicitConvF32.Compute(g, _inferenceWeights, cout, ySpan, ldy, firstRow * outW, new ReadOnlySpan<float>(padded, paddedLength),
            new ReadOnlySpan<int>(offsets, k), firstRow * outW / width, rowCount * outW / width, variant);
    }

    // Output rows [start, end) of one prepared sample into y [Cout, OH OW] (pointers: the work crosses threads).
    private readonly struct RawRowsWork(Conv2d layer, RawKernel kernel, ConvGeometry g, float* padded, int* offsets, float* y) : IPartitionedWork
    {
        public void Invoke(int partition, int start, int end) =>
            layer.RawRows(kernel, g, padded, offsets, start, end - start, y + (long)start * g.OutWidth, g.ColumnCols);
    }

    /// <inheritdoc/>
    public override FloatTensor Forward(FloatTensor input)
    {
        ConvGeometry g = Geometry(input.Shape);
        int batch = input.Dim(0), threads = Threads;
        _output.Resize([batch, OutChannels, g.OutHeight, g.OutWidth]);   // y: [N, Cout, OH, OW]
        _input = input;
        var work = new ForwardWork(this, g, input, _output, threads);
        if (UsesWinograd(g))
        {
            ForwardWinograd(g, input, batch, threads);
            return _output;
        }
        if (GemmF32.HasAvx2Fma)
        {
            int packed = GemmF32.PackedRowsLength(OutChannels, g.ColumnRows);
            if (_packedWeights.Length < packed)
            {
                _packedWeights = new float[packed];
            }
            GemmF32.PackRows(Weight.Value.Data, g.ColumnRows, OutChannels, g.ColumnRows, _packedWeights);
        }
        if (batch >= threads)
        {
            EnsureWorkspace(g, WorkPartition.PartitionCount(threads, batch), backward: false);
            WorkPartition.Run(threads, batch, 1, work);
        }
        else if (ImplicitConvF32.Supports(g))
        {
            // Fewer samples than threads (batch-1 latency): pad each image once, then split its output pixels.
            EnsureWorkspace(g, 1, backward: false);
            for (int n = 0; n < batch; n++)
            {
                ImplicitConvF32.Prepare(input.Data.Slice(n * g.InputSize, g.InputSize), g, _columns[0], _offsets[0]);
                KernelVariant variant = ImplicitConvF32.VariantFor(g);
                WorkPartition.Run(threads, g.ColumnCols / ImplicitConvF32.PanelWidthOf(variant), 1, new ImplicitPanelsWork(this, g, n, variant));
            }
        }
        else
        {
            // Fewer samples than threads (batch-1 latency): parallelise inside each GEMM instead.
            EnsureWorkspace(g, 1, backward: false);
            for (int n = 0; n < batch; n++)
            {
                work.Sample(n, 0, parallelGemm: true);
            }
        }
        return _output;
    }

    // Winograd forward: filters transformed once per pass; samples split over threads, or for fewer samples than threads
    // (batch-1 latency) each image's tile chunks. Either way every output is computed by the same operations.
    private void ForwardWinograd(in ConvGeometry g, FloatTensor input, int batch, int threads)
    {
        TransformFilters(ref _winogradFilters, flipTranspose: false);
        int pixels = g.ColumnCols, cout = OutChannels;
        if (batch >= threads)
        {
            int parts = WorkPartition.PartitionCount(threads, batch);
            EnsureWinogradWorkspace(g, parts, parts);
            WorkPartition.Run(threads, batch, 1, new WinogradSamplesWork(this, g, input));
            return;
        }
        int chunks = WinogradF32.ChunkCount(g);
        threads = WinogradF32.ThreadsFor(g, threads);
        EnsureWinogradWorkspace(g, 1, WorkPartition.PartitionCount(threads, chunks));
        fixed (float* w = _winogradFilters, b = Bias.Value.Data, pp = _winogradPadded[0])
        {
            for (int n = 0; n < batch; n++)
            {
                WinogradF32.Prepare(input.Data.Slice(n * g.InputSize, g.InputSize), g, _winogradPadded[0]);
                fixed (float* py = _output.Data.Slice(n * cout * pixels, cout * pixels), pc = _winogradChunks[0])
                {
                    // Chunk workers' scratch: one contiguous block, partition p at p chunkLength (see EnsureWinogradWorkspace).
                    WorkPartition.Run(threads, chunks, 1, new WinogradChunksWork(g, w, _winogradFilters.Length, cout, b, cout, py, pp,
                        _winogradPadded[0].Length, pc, WinogradF32.ChunkScratchLength(InChannels, OutChannels)));
                }
            }
        }
    }

    private readonly struct WinogradSamplesWork(Conv2d layer, ConvGeometry g, FloatTensor input) : IPartitionedWork
    {
        public void Invoke(int partition, int start, int end)
        {
            int pixels = g.ColumnCols, cout = layer.OutChannels;
            for (int n = start; n < end; n++)
            {
                WinogradF32.Forward(input.Data.Slice(n * g.InputSize, g.InputSize), g, layer._winogradFilters, cout, layer.Bias.Value.Data,
                    relu: false, layer._output.Data.Slice(n * cout * pixels, cout * pixels), layer._winogradPadded[partition],
                    layer._winogradChunks[partition], WinogradF32.Best);
            }
        }
    }

    // Per-partition padded images (for the forward and the backward-data geometry) and chunk scratch; with more chunk
    // workers than partitions (one image split by chunks), partition 0's chunk scratch holds all workers' blocks.
    private void EnsureWinogradWorkspace(in ConvGeometry g, int parts, int chunkWorkers)
    {
        int padded = WinogradF32.PaddedLength(g);
        if (WinogradF32.Supports(BackwardDataGeometry(g)))
        {
            padded = Math.Max(padded, WinogradF32.PaddedLength(BackwardDataGeometry(g)));
        }
        int chunk = WinogradF32.ChunkScratchLength(InChannels, OutChannels);
        Grow(ref _winogradPadded, parts, padded);
        Grow(ref _winogradChunks, parts, chunk);
        if (chunkWorkers > parts && _winogradChunks[0].Length < chunkWorkers * chunk)
        {
            _winogradChunks[0] = new float[chunkWorkers * chunk];
        }
    }

    // Panels [start, end) of sample n's output, from the image padded into partition 0's workspace.
    private readonly struct ImplicitPanelsWork(Conv2d layer, ConvGeometry g, int n, KernelVariant variant) : IPartitionedWork
    {
        public void Invoke(int partition, int start, int end)
        {
            int pixels = g.ColumnCols, cout = layer.OutChannels;
            Span<float> y = layer._output.Data.Slice(n * cout * pixels, cout * pixels);
            ImplicitConvF32.Compute(g, layer._packedWeights, cout, y, layer._columns[0], layer._offsets[0], start, end - start, variant);
            ReadOnlySpan<float> bias = layer.Bias.Value.Data;
            int width = ImplicitConvF32.PanelWidthOf(variant), first = start * width, count = (end - start) * width;
            for (int c = 0; c < cout; c++)
            {
                Span<float> row = y.Slice(c * pixels + first, count);
                TensorPrimitives.Add(row, bias[c], row);
            }
        }
    }

    private readonly struct ForwardWork(Conv2d layer, ConvGeometry g, FloatTensor input, FloatTensor output, int threads) : IPartitionedWork
    {
        public void Invoke(int partition, int start, int end)
        {
            for (int n = start; n < end; n++)
            {
                Sample(n, partition, parallelGemm: false);
            }
        }

        public void Sample(int n, int partition, bool parallelGemm)
        {
            int k = g.ColumnRows, pixels = g.ColumnCols, cout = layer.OutChannels;
            ReadOnlySpan<float> image = input.Data.Slice(n * g.InputSize, g.InputSize);
            Span<float> y = output.Data.Slice(n * cout * pixels, cout * pixels);
            ReadOnlySpan<float> w = layer.Weight.Value.Data;
            if (!parallelGemm && layer.UsesDirectKernel && DirectConvF32.Supports(g))
            {
                // Shallow filters (conv1): the direct kernel, the same FMA chain per output as the implicit GEMM.
                DirectConvF32.Pad(image, g, layer._columns[partition]);
                DirectConvF32.Compute(g, w, cout, layer._columns[partition], 0, g.OutHeight, y, pixels, DirectConvF32.Best);
                AddBias(y, layer.Bias.Value.Data, pixels);
                return;
            }
            if (!parallelGemm && ImplicitConvF32.Supports(g))
            {
                // No im2col at all: the kernel reads the taps from a zero-padded copy of the image.
                ImplicitConvF32.Forward(image, g, layer._packedWeights, cout, y, layer._columns[partition], layer._offsets[partition]);
                AddBias(y, layer.Bias.Value.Data, pixels);
                return;
            }
            if (!parallelGemm && GemmF32.HasAvx2Fma)
            {
                // Columns go straight into the GEMM's panel layout, a chunk of pixels at a time so that they are still in
                // L2 when multiplied; the weights were packed once for the whole batch.
                for (int j0 = 0; j0 < pixels; j0 += PixelsPerChunk)
                {
                    int count = Math.Min(PixelsPerChunk, pixels - j0);
                    Span<float> panels = layer._columns[partition].AsSpan(0, GemmF32.PanelsLength(k, count));
                    Im2ColF32.Im2ColPanels(image, g, j0, count, panels);
                    GemmF32.MultiplyPrepacked(cout, count, k, layer._packedWeights, panels, y[j0..], pixels, accumulate: false);
                }
                AddBias(y, layer.Bias.Value.Data, pixels);
                return;
            }
            Span<float> col = layer._columns[partition].AsSpan(0, k * pixels);
            Im2ColF32.Im2Col(image, g, col);
            if (parallelGemm)
            {
                GemmF32.MultiplyParallel(threads, false, false, cout, pixels, k, w, k, col, pixels, y, pixels, accumulate: false);
            }
            else
            {
                GemmF32.Multiply(false, false, cout, pixels, k, w, k, col, pixels, y, pixels, accumulate: false, GemmF32.Best);
            }
            AddBias(y, layer.Bias.Value.Data, pixels);
        }

        private static void AddBias(Span<float> y, ReadOnlySpan<float> bias, int pixels)
        {
            for (int c = 0; c < bias.Length; c++)
            {
                Span<float> row = y.Slice(c * pixels, pixels);
                TensorPrimitives.Add(row, bias[c], row);
            }
        }
    }

    /// <inheritdoc/>
    public override FloatTensor? Backward(FloatTensor outputGradient)
    {
        FloatTensor input = RequireForward(_input, Description);
        RequireGradientShape(outputGradient, _output, Description);
        ConvGeometry g = Geometry(input.Shape);
        int batch = input.Dim(0), threads = Threads;
        bool winogradData = ComputeInputGradient && UsesWinograd(BackwardDataGeometry(g));
        if (ComputeInputGradient)
        {
            _inputGradient.Resize(input.Shape);     // dx: [N, Cin, H, W]
        }
        // dW and db by the implicit weight-gradient kernel where it applies (AccumulateWeightGradient); the per-sample
        // work below then computes dx only.
        bool implicitWeights = UsesImplicitWeightGradient(g);
        if (implicitWeights)
        {
            AccumulateWeightGradient(input, outputGradient, g, threads);
            if (!ComputeInputGradient)
            {
                return null;
            }
        }
        if (winogradData)
        {
            TransformFilters(ref _winogradBackFilters, flipTranspose: true);
        }
        if (batch >= threads)
        {
            int parts = WorkPartition.PartitionCount(threads, batch);
            EnsureWorkspace(g, parts, backward: true);
            if (winogradData)
            {
                EnsureWinogradWorkspace(g, parts, parts);
            }
            for (int p = 0; p < parts; p++)
            {
                _weightGradients[p].AsSpan().Clear();
                _biasGradients[p].AsSpan().Clear();
            }
            WorkPartition.Run(threads, batch, 1, new BackwardWork(this, g, input, outputGradient, parallelGemm: false, threads, !implicitWeights));
            // Sum the partitions' partial gradients in partition order: deterministic for a given thread count.
            Span<float> dW = Weight.Gradient.Data, db = Bias.Gradient.Data;
            for (int p = 0; p < parts && !implicitWeights; p++)
            {
                TensorPrimitives.Add(dW, _weightGradients[p], dW);
                TensorPrimitives.Add(db, _biasGradients[p], db);
            }
        }
        else
        {
            EnsureWorkspace(g, 1, backward: true);
            if (winogradData)
            {
                EnsureWinogradWorkspace(g, 1, 1);
            }
            var work = new BackwardWork(this, g, input, outputGradient, parallelGemm: true, threads, !implicitWeights);
            for (int n = 0; n < batch; n++)
            {
                work.Sample(n, 0, Weight.Gradient.Data, Bias.Gradient.Data);
            }
        }
        return ComputeInputGradient ? _inputGradient : null;
    }

    private readonly struct BackwardWork(Conv2d layer, ConvGeometry g, FloatTensor input, FloatTensor outputGradient, bool parallelGemm, int threads,
        bool weightGradient) : IPartitionedWork
    {
        public void Invoke(int partition, int start, int end)
        {
            for (int n = start; n < end; n++)
            {
                Sample(n, partition, layer._weightGradients[partition], layer._biasGradients[partition]);
            }
        }

        public void Sample(int n, int partition, Span<float> dW, Span<float> db)
        {
            int k = g.ColumnRows, pixels = g.ColumnCols, cout = layer.OutChannels;
            ReadOnlySpan<float> dy = outputGradient.Data.Slice(n * cout * pixels, cout * pixels);
            if (weightGradient)
            {
                for (int c = 0; c < cout; c++)
                {
                    db[c] += TensorPrimitives.Sum(dy.Slice(c * pixels, pixels));
                }
                // Recomputing im2col costs one pass over the input; caching it for a batch would cost N times its memory.
                Span<float> col = layer._columns[partition].AsSpan(0, k * pixels);
                Im2ColF32.Im2Col(input.Data.Slice(n * g.InputSize, g.InputSize), g, col);
                Gemm(false, true, cout, k, pixels, dy, pixels, col, pixels, dW, k, accumulate: true);
            }
            if (layer.ComputeInputGradient && layer.UsesWinograd(layer.BackwardDataGeometry(g)))
            {
                // dx = conv(dy, rot180(W)^T) with padding k - 1 - pad, by Winograd (docs/float-engine.md).
                WinogradF32.Forward(dy, layer.BackwardDataGeometry(g), layer._winogradBackFilters, layer.InChannels, [], relu: false,
                    layer._inputGradient.Data.Slice(n * g.InputSize, g.InputSize), layer._winogradPadded[partition],
                    layer._winogradChunks[partition], WinogradF32.Best);
            }
            else if (layer.ComputeInputGradient)
            {
                Span<float> dcol = layer._columnGradients[partition].AsSpan(0, k * pixels);
                Gemm(true, false, k, pixels, cout, layer.Weight.Value.Data, k, dy, pixels, dcol, pixels, accumulate: false);
                Span<float> dx = layer._inputGradient.Data.Slice(n * g.InputSize, g.InputSize);
                dx.Clear();
                Im2ColF32.Col2Im(dcol, g, dx);
            }
        }

        private void Gemm(bool ta, bool tb, int m, int n, int k, ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb, Span<float> c, int ldc, bool accumulate)
        {
            if (parallelGemm)
            {
                GemmF32.MultiplyParallel(threads, ta, tb, m, n, k, a, lda, b, ldb, c, ldc, accumulate);
            }
            else
            {
                GemmF32.Multiply(ta, tb, m, n, k, a, lda, b, ldb, c, ldc, accumulate, GemmF32.Best);
            }
        }
    }

    private void EnsureWorkspace(in ConvGeometry g, int parts, bool backward)
    {
        int colSize = Math.Max(Math.Max(g.ColumnRows * g.ColumnCols, GemmF32.PanelsLength(g.ColumnRows, g.ColumnCols)), ImplicitConvF32.PaddedLength(g));
        Grow(ref _columns, parts, colSize);
        if (_offsets.Length < parts)
        {
            Array.Resize(ref _offsets, parts);
        }
        for (int p = 0; p < parts; p++)
        {
            if (_offsets[p] is null || _offsets[p].Length < g.ColumnRows)
            {
                _offsets[p] = new int[g.ColumnRows];
            }
        }
        if (backward)
        {
            Grow(ref _weightGradients, parts, OutChannels * g.ColumnRows, exact: true);
            Grow(ref _biasGradients, parts, OutChannels, exact: true);
            if (ComputeInputGradient)
            {
                Grow(ref _columnGradients, parts, colSize);
            }
        }
    }

    private static void Grow(ref float[][] buffers, int parts, int size, bool exact = false)
    {
        if (buffers.Length < parts)
        {
            Array.Resize(ref buffers, parts);
        }
        for (int p = 0; p < parts; p++)
        {
            if (buffers[p] is null || buffers[p].Length < size || (exact && buffers[p].Length != size))
            {
                buffers[p] = new float[size];
            }
        }
    }

    // ---- Weight gradient (dW, db) of stride-1 convolutions: ConvWeightGradientF32, implicit GEMM over pixels ----

    /// <summary>
    /// Forces the im2col + GEMM weight gradient even where the implicit kernel applies: tests compare the two paths and
    /// benchmarks time them side by side.
    /// </summary>
    internal bool UseIm2ColWeightGradient { get; set; }

    private float[] _weightAccumulator = [];    // [Cout, C k k, lanes] per-lane partial sums of dW, rows split between threads
    private float[][] _paddedImages = [];       // per partition: the current image, zero-padded
    private int[] _weightTapOffsets = [];        // tap offsets into a padded image, padded to whole tap tiles

    private bool UsesImplicitWeightGradient(in ConvGeometry g) =>
        !UseIm2ColWeightGradient && ConvWeightGradientF32.VariantFor(g) != KernelVariant.Scalar;

    /// <summary>
    /// dW += sum over n of dy[n] col(x[n])^T and db += the pixel sums of dy, as an implicit GEMM whose depth is the
    /// batch's pixels (<see cref="ConvWeightGradientF32"/>): the output channels are split between threads (whole row
    /// tiles), each thread pads every image into its own buffer and accumulates its rows over the whole batch, so
    /// nothing is packed, no partial dW is summed, and the result does not depend on the thread count.
    /// </summary>
    private void AccumulateWeightGradient(FloatTensor input, FloatTensor outputGradient, in ConvGeometry g, int threads)
    {
        KernelVariant variant = ConvWeightGradientF32.VariantFor(g);
        int rows = ConvWeightGradientF32.PaddedRows(OutChannels, variant), rowTile = ConvWeightGradientF32.RowTileOf(variant);
        int accumulatorLength = ConvWeightGradientF32.AccumulatorLength(g, OutChannels, variant);
        if (_weightAccumulator.Length < accumulatorLength)
        {
            _weightAccumulator = GC.AllocateArray<float>(accumulatorLength, pinned: true);
        }
        _weightAccumulator.AsSpan(0, accumulatorLength).Clear();
        int taps = ConvWeightGradientF32.PaddedTaps(g, variant);
        if (_weightTapOffsets.Length < taps)
        {
            _weightTapOffsets = new int[taps];
        }
        ConvWeightGradientF32.TapOffsets(g, variant, _weightTapOffsets);
        int parts = WorkPartition.PartitionCount(threads, rows, rowTile);
        Grow(ref _paddedImages, parts, ImplicitConvF32.PaddedLength(g));
        WorkPartition.Run(threads, rows, rowTile, new WeightGradientWork(this, g, input, outputGradient, variant));
    }

    private readonly struct WeightGradientWork(Conv2d layer, ConvGeometry g, FloatTensor input, FloatTensor outputGradient,
        KernelVariant variant) : IPartitionedWork
    {
        public void Invoke(int partition, int start, int end)
        {
            int cout = layer.OutChannels, pixels = g.ColumnCols, batch = input.Dim(0);
            Span<float> padded = layer._paddedImages[partition], db = layer.Bias.Gradient.Data;
            int lastRow = Math.Min(end, cout);
            for (int n = 0; n < batch; n++)
            {
                ConvWeightGradientF32.PadImage(input.Data.Slice(n * g.InputSize, g.InputSize), g, padded, clearBorder: n == 0);
                ReadOnlySpan<float> dy = outputGradient.Data.Slice(n * cout * pixels, cout * pixels);
                ConvWeightGradientF32.Accumulate(g, dy, cout, padded, layer._weightTapOffsets, start, end - start, layer._weightAccumulator, variant);
                for (int c = start; c < lastRow; c++)
                {
                    db[c] += TensorPrimitives.Sum(dy.Slice(c * pixels, pixels));
                }
            }
            ConvWeightGradientF32.Reduce(g, cout, layer._weightAccumulator, start, end - start, layer.Weight.Gradient.Data, variant);
        }
    }

    /// <inheritdoc/>
    public override string ToString() =>
        $"Conv2d({InChannels}, {OutChannels}, kernel_size={KernelSize}, stride={Stride}, padding={Padding})";
}
