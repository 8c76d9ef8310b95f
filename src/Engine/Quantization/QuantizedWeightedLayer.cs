using Engine.Kernels;

namespace Engine.Quantization;

/// <summary>
/// What a quantized convolution and a quantized linear layer share: int8 weight codes with per-output-channel (or
/// per-tensor) scales and zero points, an int32 bias, and the integer output stage. For output channel c, with
/// x the input codes (zero point zx, scale sx), w the weight codes (zero point zw[c], scale sw[c]) and depth k:
/// <code>
///   real y[c, j] = sx sw[c] ( sum_p (w[c, p] - zw[c]) (x[p, j] - zx) + bias[c] )
///                = sx sw[c] ( acc[c, j] - zx rowsum(w)[c] - zw[c] colsum(x)[j] + k zw[c] zx + bias[c] )
///   y code       = clamp( zy + round( (sx sw[c] / sy) (acc[c, j] + addend[c] - zw[c] colsum(x)[j]) ), low, 255 )
/// </code>
/// with acc = w x from the exact int8 GEMM, addend[c] = bias[c] - zx rowsum(w)[c] + k zw[c] zx folded once here, and the
/// rescaling sx sw[c] / sy applied as a fixed-point multiplier (<see cref="FixedPoint"/>). low = zy when a ReLU is fused
/// (real 0 is the code zy), else 0 (gemmlowp doc/quantization.md; TFLite's int8 specification).
/// </summary>
public abstract class QuantizedWeightedLayer : QuantizedLayer
{
    private readonly sbyte[] _weights;
    private readonly int[] _weightShape, _weightZeroPoints, _bias;
    private readonly float[] _weightScales;
    private readonly int[] _packedWeights;
    // 4-bit codes eight to an int32 (GemmS4U8) rather than int8 panels: layers that multiply through Accumulate or
    // MultiplyRequantizePool (linear layers, convolutions deeper than DirectConvQ8.MaxDepth); DirectConvQ8 reads int8
    // panels only, so shallow convolutions never set it.
    private readonly bool _nibblePanels;
    private readonly int[] _addends, _mantissas, _shifts;
    private readonly float[] _logitScales;
    private readonly int[] _perRowZeroPoints;
    private readonly bool _hasWeightZeroPoints;

    /// <summary>
    /// Builds the layer's integer output stage from its codes and parameters; rejects values that could overflow int32
    /// and codes or zero points that do not fit <paramref name="weightBits"/> bits (two's complement,
    /// [-2^(b-1), 2^(b-1) - 1]). With <paramref name="nibblePanels"/> and 4-bit codes the layer keeps its weights packed
    /// two codes per byte and multiplies with <see cref="GemmS4U8"/>; otherwise in the int8 panels of <see cref="GemmS8U8"/>.
    /// The arrays are copied: changing them afterwards does not change the layer.
    /// </summary>
    protected QuantizedWeightedLayer(string name, QuantParams input, QuantParams output, sbyte[] weights, int[] weightShape,
        float[] weightScales, int[] weightZeroPoints, int[] bias, bool fusedRelu, int weightBits, bool nibblePanels)
        : base(name, input, output)
    {
        // Copied first, so that nothing the caller still holds can desynchronise the codes from the checks, the packed
        // weights and the addends.
        _weights = weights = [.. weights];
        _weightShape = weightShape = [.. weightShape];
        _weightScales = weightScales = [.. weightScales];
        _weightZeroPoints = weightZeroPoints = [.. weightZeroPoints];
        _bias = bias = [.. bias];
        OutFeatures = weightShape[0];
        Depth = weights.Length / Math.Max(OutFeatures, 1);
        if (OutFeatures <= 0 || Depth <= 0 || OutFeatures * Depth != weights.Length)
        {
            throw new ArgumentException($"{name}: {weights.Length} weight codes do not fit shape [{string.Join(", ", weightShape)}].");
        }
        if ((weightScales.Length != OutFeatures && weightScales.Length != 1) || weightZeroPoints.Length != weightScales.Length)
        {
            throw new ArgumentException(
                $"{name}: {weightScales.Length} weight scales and {weightZeroPoints.Length} zero points; expected {OutFeatures} (per channel) or 1 (per tensor) of each.");
        }
        if (bias.Length != OutFeatures)
        {
            throw new ArgumentException($"{name}: {bias.Length} bias values for {OutFeatures} outputs.");
        }
        foreach (float s in weightScales)
        {
            if (!(s > 0f) || !float.IsFinite(s))
            {
                throw new ArgumentException($"{name}: weight scale {s} must be finite and > 0.");
            }
        }
        if (weightBits < QuantizationOptions.MinWeightBits || weightBits > QuantizationOptions.MaxWeightBits)
        {
            throw new ArgumentException(
                $"{name}: weight codes of {weightBits} bits; this engine runs {QuantizationOptions.MinWeightBits} to {QuantizationOptions.MaxWeightBits}.");
        }
        int lowestCode = -(1 << (weightBits - 1)), highestCode = (1 << (weightBits - 1)) - 1;
        foreach (int z in weightZeroPoints)
        {
            if (z < lowestCode || z > highestCode)
            {
                throw new ArgumentException($"{name}: weight zero point {z} is outside the {weightBits}-bit range [{lowestCode}, {highestCode}].");
            }
        }
        for (int i = 0; i < weights.Length; i++)
        {
            if (weights[i] < lowestCode || weights[i] > highestCode)
            {
                throw new ArgumentException(
                    $"{name}: weight code {weights[i]} at index {i} is outside the {weightBits}-bit range [{lowestCode}, {highestCode}].");
            }
        }
        WeightBits = weightBits;
        CheckActivation(name, "input", input);
        CheckActivation(name, "output", output);

        FusedRelu = fusedRelu;
        _hasWeightZeroPoints = _weightZeroPoints.Any(z => z != 0);
        _perRowZeroPoints = new int[OutFeatures];
        for (int c = 0; c < OutFeatures; c++)
        {
            _perRowZeroPoints[c] = WeightZeroPoint(c);
        }

        _nibblePanels = nibblePanels && weightBits == GemmS4U8.CodeBits;
        if (_nibblePanels)
        {
            _packedWeights = new int[GemmS4U8.PackedWeightsLength(OutFeatures, Depth)];
            GemmS4U8.PackWeights(OutFeatures, Depth, weights, Depth, _packedWeights, Variant);
        }
        else
        {
            _packedWeights = new int[GemmS8U8.PackedWeightsLength(OutFeatures, Depth, Variant)];
            GemmS8U8.PackWeights(OutFeatures, Depth, weights, Depth, _packedWeights, Variant);
        }
        _addends = new int[OutFeatures];
        _mantissas = new int[OutFeatures];
        _shifts = new int[OutFeatures];
        _logitScales = new float[OutFeatures];
        // |acc| <= k 128 255 and |zw colsum| <= 128 k 255: with the addend, every intermediate must stay inside int32.
        long accumulatorBound = (long)Depth * 128 * 255 * 2;
        for (int c = 0; c < OutFeatures; c++)
        {
            float weightScale = WeightScale(c);
            int weightZeroPoint = WeightZeroPoint(c);
            long rowSum = 0;
            foreach (sbyte w in weights.AsSpan(c * Depth, Depth))
            {
                rowSum += w;
            }
            long addend = bias[c] - (long)input.ZeroPoint * rowSum + (long)Depth * weightZeroPoint * input.ZeroPoint;
            if (Math.Abs(addend) + accumulatorBound > int.MaxValue)
            {
                throw new ArgumentException($"{name}: output {c} could overflow int32 (bias {bias[c]}, depth {Depth}).");
            }
            _addends[c] = (int)addend;
            double multiplier = (double)input.Scale * weightScale / output.Scale;
            if (!(multiplier > 0) || !double.IsFinite(multiplier) || multiplier >= 1L << 31)
            {
                throw new ArgumentException($"{name}: requantization multiplier {multiplier} for output {c} is out of range.");
            }
            (_mantissas[c], _shifts[c]) = FixedPoint.QuantizeMultiplier(multiplier);
            _logitScales[c] = input.Scale * weightScale;
        }
    }

    /// <summary>The int8 GEMM variant this layer packs its operands for (the CPU's best).</summary>
    protected static KernelVariant Variant => GemmS8U8.Best;

    /// <summary>
    /// Bits of the weight codes, 4 to 8 (<see cref="QuantizationOptions.WeightBits"/>): every code lies in
    /// [-2^(b-1), 2^(b-1) - 1]. They are held one per sbyte in <see cref="Weights"/> whatever b is.
    /// </summary>
    public int WeightBits { get; }

    /// <summary>Bytes of the weight panels the layer multiplies from (4-bit linear layers: 8 codes per int32).</summary>
    internal long PackedWeightBytes => (long)_packedWeights.Length * sizeof(int);

    /// <summary>Output channels (rows of the GEMM).</summary>
    public int OutFeatures { get; }

    /// <summary>Weights per output channel: in_features, or in_channels kh kw.</summary>
    public int Depth { get; }

    /// <summary>int8 weight codes in the float weight's layout (read-only: the layer computes from packed copies of them).</summary>
    public ReadOnlySpan<sbyte> Weights => _weights;

    /// <summary>The float weight's shape: [out, in] or [out, in, kh, kw].</summary>
    public ReadOnlySpan<int> WeightShape => _weightShape;

    /// <summary>Weight scales: one per output channel, or one for the tensor (read-only: the multipliers are derived from them).</summary>
    public ReadOnlySpan<float> WeightScales => _weightScales;

    /// <summary>Weight zero points, shaped as <see cref="WeightScales"/> (all 0 when symmetric; read-only).</summary>
    public ReadOnlySpan<int> WeightZeroPoints => _weightZeroPoints;

    /// <summary>int32 bias; real bias[c] = Bias[c] input_scale weight_scale[c] (read-only: it is folded into the addends).</summary>
    public ReadOnlySpan<int> Bias => _bias;

    /// <summary>Whether a following ReLU is fused by clamping at the output zero point.</summary>
    public bool FusedRelu { get; }

    /// <summary>Whether the weights are quantized per output channel.</summary>
    public bool PerChannel => _weightScales.Length == OutFeatures && OutFeatures > 1;

    /// <summary>The scale of output channel <paramref name="c"/>'s weights.</summary>
    public float WeightScale(int c) => _weightScales.Length == 1 ? _weightScales[0] : _weightScales[c];

    /// <summary>The zero point of output channel <paramref name="c"/>'s weights.</summary>
    public int WeightZeroPoint(int c) => _weightZeroPoints.Length == 1 ? _weightZeroPoints[0] : _weightZeroPoints[c];

    /// <summary>The fixed-point multiplier of output channel <paramref name="c"/>: sx sw[c] / sy = mantissa / 2^31 x 2^shift.</summary>
    public (int Mantissa, int Shift) Multiplier(int c) => (_mantissas[c], _shifts[c]);

    /// <summary>What output channel <paramref name="c"/> adds to every accumulator: bias[c] - zx rowsum(w)[c] + k zw[c] zx.</summary>
    public int Addend(int c) => _addends[c];

    /// <summary>Dequantized weights: sw[c] (w - zw[c]).</summary>
    public float[] DequantizedWeights()
    {
        float[] real = new float[_weights.Length];
        for (int c = 0; c < OutFeatures; c++)
        {
            for (int p = 0; p < Depth; p++)
            {
                real[c * Depth + p] = WeightScale(c) * (_weights[c * Depth + p] - WeightZeroPoint(c));
            }
        }
        return real;
    }

    /// <summary>
    /// acc[OutFeatures, n] = W B for a packed right operand of n columns, with the weight zero-point correction
    /// -zw[c] colsum(B)[j] applied (the addend is not).
    /// </summary>
    protected Span<int> Accumulate(ReadOnlySpan<byte> packed, int n, QuantizedWorkspace workspace)
    {
        Span<int> accumulators = workspace.Accumulators(OutFeatures * n);
        if (_nibblePanels)
        {
            GemmS4U8.MultiplyPacked(OutFeatures, n, Depth, _packedWeights, packed, accumulators, n, Variant);
        }
        else
        {
            GemmS8U8.MultiplyPacked(OutFeatures, n, Depth, _packedWeights, packed, accumulators, n, Variant);
        }
        if (_hasWeightZeroPoints)
        {
            Span<int> columnSums = workspace.ColumnSums(n);
            GemmS8U8.PackedColumnSums(Depth, n, packed, columnSums, Variant);
            for (int c = 0; c < OutFeatures; c++)
            {
                int zw = WeightZeroPoint(c);
                Span<int> row = accumulators.Slice(c * n, n);
                for (int j = 0; j < n; j++)
                {
                    row[j] -= zw * columnSums[j];
                }
            }
        }
        return accumulators;
    }

    /// <summary>
    /// Output codes y[c * ldy + j] of every channel for a packed right operand of n columns, accumulated and requantized
    /// in registers by <see cref="DirectConvQ8"/> (for shallow depth): the same codes as <see cref="Accumulate"/> then
    /// <see cref="Requantize"/>.
    /// </summary>
    private protected void MultiplyRequantize(ReadOnlySpan<byte> packed, int n, Span<byte> y, int ldy)
    {
        if (_nibblePanels)
        {
            throw new InvalidOperationException($"{Name}: the direct kernel reads int8 panels; this layer holds 4-bit nibble panels.");
        }
        int low = FusedRelu ? Math.Max(Output.ZeroPoint, 0) : 0;
        DirectConvQ8.MultiplyRequantize(OutFeatures, n, Depth, _packedWeights, packed, _addends, _mantissas, _shifts,
            _hasWeightZeroPoints ? _perRowZeroPoints : [], Output.ZeroPoint, low, byte.MaxValue, y, ldy, Variant);
    }

    /// <summary>
    /// Whether <see cref="MultiplyRequantizePool"/> can run this layer with pooling window <paramref name="pool"/>: symmetric
    /// weights, a window that divides a panel, and every channel's multiplier on the vector path (<see cref="PooledGemmQ8"/>).
    /// </summary>
    private protected bool CanPoolInTiles(int pool) =>
        !_hasWeightZeroPoints && PooledGemmQ8.SupportsPool(pool)
        && PooledGemmQ8.CanRun(_shifts, Output.ZeroPoint, FusedRelu ? Math.Max(Output.ZeroPoint, 0) : 0, byte.MaxValue, Variant);

    /// <summary>
    /// The pooled codes of one band of <paramref name="pool"/> output rows from its packed operand
    /// (<see cref="PooledGemmQ8.MultiplyRequantizePool"/>): pooled[c * ldp + w]; only where <see cref="CanPoolInTiles"/> holds.
    /// </summary>
    private protected void MultiplyRequantizePool(ReadOnlySpan<byte> packed, int panelsPerRow, int pool, Span<int> sums, Span<byte> pooled, int ldp)
    {
        int low = FusedRelu ? Math.Max(Output.ZeroPoint, 0) : 0;
        PooledGemmQ8.MultiplyRequantizePool(OutFeatures, Depth, panelsPerRow, pool, _packedWeights, packed, _addends, _mantissas, _shifts,
            Output.ZeroPoint, low, byte.MaxValue, sums, pooled, ldp, Variant, _nibblePanels);
    }

    /// <summary>Output codes of channel <paramref name="c"/> from its accumulators (the integer output stage).</summary>
    protected void Requantize(int c, ReadOnlySpan<int> accumulators, Span<byte> output)
    {
        int low = FusedRelu ? Math.Max(Output.ZeroPoint, 0) : 0;
        RequantizeS32.Row(accumulators, _addends[c], _mantissas[c], _shifts[c], Output.ZeroPoint, low, byte.MaxValue, output);
    }

    /// <summary>
    /// Real output of channel <paramref name="c"/> straight from an accumulator: sx sw[c] (acc + addend), and
    /// max(that, 0) when a ReLU is fused, exactly as the float network applies it (so such logits are never negative).
    /// </summary>
    protected float Dequantize(int c, int accumulator)
    {
        float real = _logitScales[c] * (float)((long)accumulator + _addends[c]);
        return FusedRelu ? MathF.Max(real, 0f) : real;
    }

    /// <summary>
    /// Runs the layer on <paramref name="samples"/> samples and writes real outputs taken from the int32 accumulators
    /// (the <c>int32_accumulator</c> logits of the last layer), in the layer's output layout: sx sw[c] (acc + addend),
    /// clamped at 0 when a ReLU is fused.
    /// </summary>
    public abstract void ForwardAccumulators(ReadOnlySpan<byte> input, ReadOnlySpan<int> sampleShape, int samples, Span<float> output, QuantizedWorkspace workspace);

    private static void CheckActivation(string name, string which, QuantParams p)
    {
        if (!(p.Scale > 0f) || !float.IsFinite(p.Scale) || p.ZeroPoint < 0 || p.ZeroPoint > 255)
        {
            throw new ArgumentException($"{name}: {which} scale {p.Scale} and zero point {p.ZeroPoint} are not a valid uint8 quantization.");
        }
    }
}
