using Engine.Data;
using Engine.IO;
using Engine.Kernels;
using Engine.Layers;
using Engine.Onnx;
using Engine.Quantization;
using Engine.Tensors;
using Engine.Tests.Inference;

namespace Engine.Tests.Quantization;

/// <summary>
/// Layers that know the bits of their weight codes (<see cref="QuantizedWeightedLayer.WeightBits"/>): 4-bit linear
/// layers multiply from nibble panels (<see cref="GemmS4U8"/>), 4-bit files store two codes per byte
/// (docs/file-formats.md), and every one of them computes exactly what the same codes held at 8 bits compute.
/// </summary>
public class Int4WeightsTests
{
    private static readonly QuantParams Activation = new(0.05f, 7, 0, 255);

    private static (sbyte[] Codes, float[] Scales, int[] ZeroPoints, int[] Bias) Parameters(int outputs, int depth, bool perChannel, ulong seed)
    {
        var random = new SeededRandom(seed);
        int low = perChannel ? -7 : -8;
        sbyte[] codes = new sbyte[outputs * depth];
        for (int i = 0; i < codes.Length; i++)
        {
            // A quarter of the codes at the ends of the range, the rest anywhere in it.
            int r = random.NextInt(8);
            codes[i] = (sbyte)(r == 0 ? low : r == 1 ? 7 : low + random.NextInt(8 - low));
        }
        float[] scales = perChannel ? [.. Enumerable.Range(0, outputs).Select(c => 0.01f + 0.003f * c)] : [0.02f];
        int[] zeroPoints = perChannel ? new int[outputs] : [-3];
        int[] bias = [.. Enumerable.Range(0, outputs).Select(_ => random.NextInt(2001) - 1000)];
        return (codes, scales, zeroPoints, bias);
    }

    private static byte[] Codes(int count, ulong seed)
    {
        var random = new SeededRandom(seed);
        // Activations 0 and 255 often, anything else otherwise.
        return [.. Enumerable.Range(0, count).Select(_ => random.NextInt(4) switch { 0 => (byte)0, 1 => (byte)255, _ => (byte)random.NextInt(256) })];
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void A_four_bit_linear_layer_equals_the_same_codes_held_at_eight_bits_at_every_batch_size(bool perChannel)
    {
        foreach ((int outputs, int inputs) in new[] { (1, 1), (3, 5), (17, 33), (5, 291), (33, 17) })
        {
            var (codes, scales, zeroPoints, bias) = Parameters(outputs, inputs, perChannel, (ulong)(outputs * 1000 + inputs));
            var four = new QuantizedLinear("fc", Activation, Activation, codes, [outputs, inputs], scales, zeroPoints, bias, fusedRelu: true, weightBits: 4);
            var eight = new QuantizedLinear("fc", Activation, Activation, codes, [outputs, inputs], scales, zeroPoints, bias, fusedRelu: true);
            Assert.Equal(4, four.WeightBits);
            Assert.Equal(8, eight.WeightBits);
            var workspace = new QuantizedWorkspace();
            foreach (int samples in new[] { 1, 3, 16, 17, 64 })
            {
                byte[] x = Codes(samples * inputs, (ulong)samples);
                byte[] y4 = new byte[samples * outputs], y8 = new byte[samples * outputs];
                four.Forward(x, [inputs], samples, y4, workspace);
                eight.Forward(x, [inputs], samples, y8, workspace);
                Assert.Equal(y8, y4);
                float[] a4 = new float[samples * outputs], a8 = new float[samples * outputs];
                four.ForwardAccumulators(x, [inputs], samples, a4, workspace);
                eight.ForwardAccumulators(x, [inputs], samples, a8, workspace);
                Assert.Equal(a8, a4);
            }
        }
    }

    [Theory]
    [MemberData(nameof(FusedInt8PathTests.Variants), MemberType = typeof(FusedInt8PathTests))]
    public void The_pooled_band_on_nibble_panels_equals_the_pooled_band_on_int8_panels(KernelVariant variant)
    {
        var random = new SeededRandom(31);
        int unclamped = 0;
        foreach (int m in new[] { 1, 5, 64 })
        foreach (int k in new[] { 17, 33, 289 })
        foreach (int pool in new[] { 1, 4, 16 })
        {
            const int panelsPerRow = 2;
            int n = pool * panelsPerRow * GemmS8U8.PanelWidth, windows = panelsPerRow * GemmS8U8.PanelWidth / pool;
            var (a, _, _, _) = Parameters(m, k, perChannel: false, (ulong)(m * 1000 + k + pool));
            byte[] b = Codes(k * n, (ulong)(k + pool));
            int[] addends = new int[m], mantissas = new int[m], shifts = new int[m];
            for (int c = 0; c < m; c++)
            {
                addends[c] = random.NextInt(20001) - 10000;
                (mantissas[c], shifts[c]) = FixedPoint.QuantizeMultiplier(Math.Pow(2, -16 + 12 * random.NextUniform(0f, 1f)));
            }
            byte[] packedB = new byte[GemmS8U8.PackedActivationsLength(k, n, variant)];
            GemmS8U8.PackActivations(k, n, b, n, packedB, variant);
            int[] bytes = new int[GemmS8U8.PackedWeightsLength(m, k, variant)], nibbles = new int[GemmS4U8.PackedWeightsLength(m, k)];
            GemmS8U8.PackWeights(m, k, a, k, bytes, variant);
            GemmS4U8.PackWeights(m, k, a, k, nibbles, variant);
            byte[] expected = new byte[m * windows], actual = new byte[m * windows];
            int[] sums = new int[PooledGemmQ8.SumsLength(m)];
            PooledGemmQ8.MultiplyRequantizePool(m, k, panelsPerRow, pool, bytes, packedB, addends, mantissas, shifts, 9, 9, 255, sums, expected, windows, variant);
            PooledGemmQ8.MultiplyRequantizePool(m, k, panelsPerRow, pool, nibbles, packedB, addends, mantissas, shifts, 9, 9, 255, sums, actual, windows, variant, nibbles: true);
            Assert.True(expected.SequenceEqual(actual), $"{variant}: m={m} k={k} pool={pool}");
            unclamped += expected.Count(v => v != 9);
        }
        Assert.True(unclamped > 1000, $"only {unclamped} codes above the clamp: the comparison would prove little");
    }

    [Fact]
    public void Layers_on_the_gemm_hold_nibble_panels_and_shallow_convolutions_int8_ones()
    {
        QuantizedNetwork q = QuantizeSeed(4);
        long Bytes(string name) => ((QuantizedWeightedLayer)q.Layers.Single(l => l.Name == name)).PackedWeightBytes;
        // conv2 keeps nibble panels on AVX-VNNI only; the AVX2 and portable GEMMs read it widened (QuantizedConv2d).
        Assert.Equal(GemmS8U8.Best == KernelVariant.AvxVnni ? 64 * 288 / 2 : GemmS8U8.PackedWeightsLength(64, 288, GemmS8U8.Best) * sizeof(int), Bytes("conv2"));
        Assert.Equal(128 * 4096 / 2, Bytes("fc1"));
        Assert.Equal(12 * 128 / 2, Bytes("fc2"));      // 10 outputs padded to 3 row blocks of 4
        // conv1 (depth 9) runs the direct kernel on int8 panels: its 4-bit codes are widened at construction.
        Assert.Equal(GemmS8U8.PackedWeightsLength(32, 9, GemmS8U8.Best) * sizeof(int), Bytes("conv1"));
    }

    [Fact]
    public void A_four_bit_linear_layer_holds_its_panels_in_half_a_byte_per_code()
    {
        var (codes, scales, zeroPoints, bias) = Parameters(128, 4096, perChannel: true, 1);
        var four = new QuantizedLinear("fc1", Activation, Activation, codes, [128, 4096], scales, zeroPoints, bias, fusedRelu: true, weightBits: 4);
        Assert.Equal(128 * 4096 / 2, four.PackedWeightBytes);
    }

    [Theory]
    [InlineData(true, 16)]
    [InlineData(false, 16)]
    [InlineData(true, 9)]
    [InlineData(false, 9)]
    public void A_four_bit_convolution_equals_the_same_codes_held_at_eight_bits(bool perChannel, int width)
    {
        // Depth 3 x 3 x 3 = 27 (the direct kernel) and 40 x 9 = 360 (the GEMM), widths for both packing paths.
        foreach (int inChannels in new[] { 3, 40 })
        {
            const int outChannels = 5;
            var (codes, scales, zeroPoints, bias) = Parameters(outChannels, inChannels * 9, perChannel, (ulong)(inChannels + width));
            int[] shape = [outChannels, inChannels, 3, 3];
            var four = new QuantizedConv2d("conv", Activation, Activation, codes, shape, scales, zeroPoints, bias, fusedRelu: true, stride: 1, padding: 1, weightBits: 4);
            var eight = new QuantizedConv2d("conv", Activation, Activation, codes, shape, scales, zeroPoints, bias, fusedRelu: true, stride: 1, padding: 1);
            var workspace = new QuantizedWorkspace();
            byte[] x = Codes(2 * inChannels * width * width, (ulong)width);
            byte[] y4 = new byte[2 * outChannels * width * width], y8 = new byte[y4.Length];
            four.Forward(x, [inChannels, width, width], 2, y4, workspace);
            eight.Forward(x, [inChannels, width, width], 2, y8, workspace);
            Assert.Equal(y8, y4);
        }
    }

    [Theory]
    [InlineData(4, 8)]
    [InlineData(4, -9)]
    [InlineData(5, 16)]
    [InlineData(7, -65)]
    public void Codes_outside_the_range_of_their_bits_are_refused_naming_the_layer(int bits, int code)
    {
        sbyte[] codes = [1, 2, (sbyte)code, 0];
        var e = Assert.Throws<ArgumentException>(() =>
            new QuantizedLinear("fc9", Activation, Activation, codes, [2, 2], [0.1f], [0], [0, 0], fusedRelu: false, weightBits: bits));
        Assert.Contains("fc9", e.Message);
        Assert.Contains($"{bits}-bit range", e.Message);
        Assert.Throws<ArgumentException>(() =>
            new QuantizedLinear("fc9", Activation, Activation, [1, 2, 3, 0], [2, 2], [0.1f], [0], [0, 0], fusedRelu: false, weightBits: 3));
        Assert.Throws<ArgumentException>(() =>
            new QuantizedLinear("fc9", Activation, Activation, [1, 2, 3, 0], [2, 2], [0.1f], [-9], [0, 0], fusedRelu: false, weightBits: 4));
    }

    private static readonly Sequential Seed = SeedNetwork.Create(seed: 3);

    internal static QuantizedNetwork QuantizeSeed(int bits, IReadOnlyDictionary<string, int>? layerBits = null, bool perChannel = true) =>
        Quantizer.Quantize(Seed, new TestData.RandomImages([1, 32, 32], 32), 32, 0.1f, 0.3f,
            new QuantizationOptions { PerChannel = perChannel, CalibrationBatchSize = 32, WeightBits = bits, LayerWeightBits = layerBits });

    public static TheoryData<string> BitPlans() => ["all4", "all6", "fc1-4", "fc1-conv2-4", "all4-per-tensor", "all5-per-tensor"];

    private static QuantizedNetwork Plan(string plan) => plan switch
    {
        "all4" => QuantizeSeed(4),
        "all6" => QuantizeSeed(6),
        "fc1-4" => QuantizeSeed(8, new Dictionary<string, int> { ["fc1"] = 4 }),
        "fc1-conv2-4" => QuantizeSeed(8, new Dictionary<string, int> { ["fc1"] = 4, ["conv2"] = 4 }),
        "all4-per-tensor" => QuantizeSeed(4, perChannel: false),
        _ => QuantizeSeed(5, perChannel: false),
    };

    [Theory]
    [MemberData(nameof(BitPlans))]
    public void A_seed_network_with_fewer_bits_round_trips_through_the_file_bit_for_bit(string plan)
    {
        QuantizedNetwork q = Plan(plan);
        byte[] bytes = QuantizedModelFile.ToBytes(q);
        QuantizedNetwork loaded = QuantizedModelFile.Load(bytes, "seed.int8.safetensors");
        Assert.Equal(
            q.Layers.OfType<QuantizedWeightedLayer>().Select(l => (l.Name, l.WeightBits)),
            loaded.Layers.OfType<QuantizedWeightedLayer>().Select(l => (l.Name, l.WeightBits)));
        foreach ((QuantizedWeightedLayer a, QuantizedWeightedLayer b) in q.Layers.OfType<QuantizedWeightedLayer>().Zip(loaded.Layers.OfType<QuantizedWeightedLayer>()))
        {
            Assert.Equal(a.Weights, b.Weights);
            Assert.Equal(a.WeightShape, b.WeightShape);
        }
        float[] inputs = TestData.Uniform(19 * 1024, 77);
        float[] expected = new float[190], actual = new float[190], oneThread = new float[190];
        q.Predict(inputs, 19, expected, threads: 2);
        loaded.Predict(inputs, 19, actual, threads: 2);
        loaded.Predict(inputs, 19, oneThread, threads: 1);
        Assert.Equal(expected, actual);
        Assert.Equal(expected, oneThread);
        Assert.Equal(bytes, QuantizedModelFile.ToBytes(loaded));
    }

    [Fact]
    public void A_network_with_fewer_bits_computes_what_its_codes_held_at_eight_bits_compute()
    {
        // Rebuild every layer of the 4-bit network from the same codes declared as 8-bit: the nibble panels change
        // nothing in the outputs.
        QuantizedNetwork four = QuantizeSeed(4);
        var layers = four.Layers.Select(l => l switch
        {
            QuantizedLinear f => (QuantizedLayer)new QuantizedLinear(f.Name, f.Input, f.Output, f.Weights.ToArray(), f.WeightShape.ToArray(),
                f.WeightScales.ToArray(), f.WeightZeroPoints.ToArray(), f.Bias.ToArray(), f.FusedRelu),
            QuantizedConv2d c => new QuantizedConv2d(c.Name, c.Input, c.Output, c.Weights.ToArray(), c.WeightShape.ToArray(),
                c.WeightScales.ToArray(), c.WeightZeroPoints.ToArray(), c.Bias.ToArray(), c.FusedRelu, c.Stride, c.Padding),
            _ => l,
        }).ToList();
        var eight = new QuantizedNetwork(layers, four.Input, four.InputShape, four.InputMean, four.InputStd, four.Logits);
        foreach (bool unfused in new[] { false, true })
        foreach (int samples in new[] { 1, 5, 64 })
        {
            // Fused: conv2 pools inside its GEMM tiles (PooledGemmQ8 on nibbles); unfused: the GEMM, then requantization.
            four.Unfused = eight.Unfused = unfused;
            float[] inputs = TestData.Uniform(samples * 1024, (ulong)samples);
            float[] a = new float[samples * 10], b = new float[samples * 10];
            four.Predict(inputs, samples, a);
            eight.Predict(inputs, samples, b);
            Assert.Equal(b, a);
        }
    }

    [Fact]
    public void The_file_names_the_bits_only_when_they_are_not_eight_and_packs_four_bits_two_per_byte()
    {
        SafeTensorsFile eight = SafeTensorsFile.Read(QuantizedModelFile.ToBytes(QuantizeSeed(8)), "8");
        Assert.DoesNotContain(eight.Tensors, t => t.Name.EndsWith(".weight_bits", StringComparison.Ordinal) || t.Name.EndsWith("_int4", StringComparison.Ordinal));

        QuantizedNetwork mixed = QuantizeSeed(6, new Dictionary<string, int> { ["fc1"] = 4, ["fc2"] = 8 });
        SafeTensorsFile file = SafeTensorsFile.Read(QuantizedModelFile.ToBytes(mixed), "mixed");
        Assert.Equal([4], file["fc1.weight_bits"].ToInt32s());
        Assert.Equal(SafeTensorDType.U8, file["fc1.weight_int4"].DType);
        Assert.Equal([128, 2048], file["fc1.weight_int4"].Shape);
        Assert.Equal([128, 4096], file["fc1.weight_shape"].ToInt32s());
        Assert.False(file.TryGet("fc1.weight", out _));
        Assert.Equal([6], file["conv1.weight_bits"].ToInt32s());
        Assert.Equal(SafeTensorDType.I8, file["conv1.weight"].DType);
        Assert.Equal([32, 1, 3, 3], file["conv1.weight"].Shape);
        Assert.False(file.TryGet("fc2.weight_bits", out _));
        // Byte j of row c: code 2j low, code 2j + 1 high.
        var fc1 = (QuantizedLinear)mixed.Layers.Single(l => l.Name == "fc1");
        byte[] packed = file["fc1.weight_int4"].Data;
        for (int c = 0; c < 128; c += 37)
        {
            for (int j = 0; j < 2048; j += 101)
            {
                Assert.Equal(fc1.Weights[c * 4096 + 2 * j], (sbyte)((((packed[c * 2048 + j] & 0xF) ^ 8) - 8)));
                Assert.Equal(fc1.Weights[c * 4096 + 2 * j + 1], (sbyte)((((packed[c * 2048 + j] >> 4) ^ 8) - 8)));
            }
        }
    }

    [Fact]
    public void An_odd_depth_pads_its_last_byte_with_a_zero_nibble()
    {
        sbyte[] codes = [-8, 7, -1, 3, -7, 1];     // two rows of depth 3
        Assert.Equal([0x78, 0x0F, 0x93, 0x01], QuantizedModelFile.PackNibbles(codes, 2, 3));
    }

    [Fact]
    public void A_four_bit_fc1_halves_its_share_of_the_file()
    {
        int eight = QuantizedModelFile.ToBytes(QuantizeSeed(8)).Length;
        int fc1Four = QuantizedModelFile.ToBytes(QuantizeSeed(8, new Dictionary<string, int> { ["fc1"] = 4 })).Length;
        const int fc1Codes = 128 * 4096;
        // fc1's 524,288 codes take 262,144 bytes instead; the shape, bits and header entries cost a few hundred bytes.
        Assert.InRange(eight - fc1Four, fc1Codes / 2 - 512, fc1Codes / 2);
        Assert.True(fc1Four < 0.6 * eight, $"{fc1Four} bytes against {eight}");
    }

    [Fact]
    public void Damaged_four_bit_files_name_the_file_and_the_tensor_at_fault()
    {
        SafeTensorsFile file = SafeTensorsFile.Read(QuantizedModelFile.ToBytes(QuantizeSeed(5, new Dictionary<string, int> { ["fc1"] = 4 })), "ok");

        string Refused(Func<SafeTensor, SafeTensor?> edit, params SafeTensor[] extra)
        {
            var tensors = file.Tensors.Select(edit).OfType<SafeTensor>().Concat(extra).ToList();
            byte[] bytes = new SafeTensorsFile(tensors, file.Metadata).ToBytes();
            string message = Assert.Throws<InvalidDataException>(() => QuantizedModelFile.Load(bytes, "bad.safetensors")).Message;
            Assert.Contains("bad.safetensors", message);
            return message;
        }
        SafeTensor With(SafeTensor t, string name, Func<SafeTensor> replacement) => t.Name == name ? replacement() : t;

        // The bit width: 3 and 9 are not weight widths, nor is an F32 or a [2] tensor.
        Assert.Contains("'fc1.weight_bits' is 3", Refused(t => With(t, "fc1.weight_bits", () => SafeTensor.FromInt32s(t.Name, [1], [3]))));
        Assert.Contains("'conv2.weight_bits' is 9", Refused(t => With(t, "conv2.weight_bits", () => SafeTensor.FromInt32s(t.Name, [1], [9]))));
        Assert.Contains("'fc2.weight_bits' is F32", Refused(t => With(t, "fc2.weight_bits", () => SafeTensor.FromFloats(t.Name, [1], [5f]))));
        Assert.Contains("'fc2.weight_bits' has shape [2]", Refused(t => With(t, "fc2.weight_bits", () => SafeTensor.FromInt32s(t.Name, [2], [5, 5]))));
        // Packed codes without their width, or the width without the packed codes.
        Assert.Contains("'fc1.weight_int4' needs 'fc1.weight_bits' = 4", Refused(t => t.Name == "fc1.weight_bits" ? null : t));
        Assert.Contains("'fc1.weight_int4' is missing", Refused(t => t.Name == "fc1.weight_int4" ? null : t));
        Assert.Contains("'fc1.weight_shape' is missing", Refused(t => t.Name == "fc1.weight_shape" ? null : t));
        // 4 bits declared beside int8 codes: the int8 tensor is not part of the network.
        Assert.Contains("unexpected tensor 'fc1.weight'", Refused(t => t, SafeTensor.FromSBytes("fc1.weight", [128, 4096], new sbyte[128 * 4096])));
        // Shapes that do not agree with the byte count, before anything is allocated from them.
        // Depth 4,095 fits the same bytes, but then the high nibble of every row's last byte must be the zero padding.
        Assert.Contains("'fc1.weight_int4' row 0: the high nibble past the odd depth 4095",
            Refused(t => With(t, "fc1.weight_shape", () => SafeTensor.FromInt32s(t.Name, [2], [128, 4095]))));
        Assert.Contains("'fc1.weight_int4' has shape", Refused(t => With(t, "fc1.weight_shape", () => SafeTensor.FromInt32s(t.Name, [2], [128, 8192]))));
        Assert.Contains("'fc1.weight_int4' has shape", Refused(t => With(t, "fc1.weight_shape", () => SafeTensor.FromInt32s(t.Name, [2], [64, 4096]))));
        Assert.Contains("'fc1.weight_shape' holds [128, 0]", Refused(t => With(t, "fc1.weight_shape", () => SafeTensor.FromInt32s(t.Name, [2], [128, 0]))));
        Assert.Contains("'fc1.weight_shape' holds [128, 64, 64]", Refused(t => With(t, "fc1.weight_shape", () => SafeTensor.FromInt32s(t.Name, [3], [128, 64, 64]))));
        Assert.Contains("'fc1.weight_shape' is F32", Refused(t => With(t, "fc1.weight_shape", () => SafeTensor.FromFloats(t.Name, [2], [128f, 4096f]))));
        Assert.Contains("'fc1.weight_int4' is I8", Refused(t => With(t, "fc1.weight_int4", () => SafeTensor.FromSBytes(t.Name, [128, 2048], new sbyte[128 * 2048]))));
        Assert.Contains("'fc1.weight_int4' has shape [262144]", Refused(t => With(t, "fc1.weight_int4", () => SafeTensor.FromBytes(t.Name, [128 * 2048], t.Data))));
        // A 5-bit layer whose int8 codes leave the 5-bit range; a zero point outside the range of the bits.
        Assert.Contains("'conv2.weight' holds 16 at index 3", Refused(t => With(t, "conv2.weight", () =>
        {
            sbyte[] codes = t.ToSBytes();
            codes[3] = 16;
            return SafeTensor.FromSBytes(t.Name, t.Shape, codes);
        })));
        Assert.Contains("'conv1.weight_zero_point' holds 16", Refused(t => With(t, "conv1.weight_zero_point", () => SafeTensor.FromInt32s(t.Name, [1], [16]))));
    }

    [Fact]
    public void An_odd_depth_with_a_non_zero_padding_nibble_is_refused()
    {
        // fc1 of depth 3 x 3 x 3 = 27 (odd) after a 3-channel 3x3 convolution on 3x3 images without pooling.
        var network = new Sequential(
            ("conv1", new Conv2d(1, 3, 3, stride: 1, padding: 1)),
            ("flatten", new Flatten()),
            ("fc1", new Linear(27, 5)));
        network.Initialize(new SeededRandom(9));
        QuantizedNetwork q = Quantizer.Quantize(network, new TestData.RandomImages([1, 3, 3], 16), 16, 0f, 1f,
            new QuantizationOptions { WeightBits = 4, CalibrationBatchSize = 16 });
        SafeTensorsFile file = SafeTensorsFile.Read(QuantizedModelFile.ToBytes(q), "odd");
        Assert.Equal([5, 14], file["fc1.weight_int4"].Shape);
        QuantizedNetwork loaded = QuantizedModelFile.Load(file.ToBytes(), "odd.safetensors");
        float[] inputs = TestData.Uniform(4 * 9, 5), a = new float[20], b = new float[20];
        q.Predict(inputs, 4, a);
        loaded.Predict(inputs, 4, b);
        Assert.Equal(a, b);

        byte[] packed = file["fc1.weight_int4"].Data.ToArray();
        packed[2 * 14 + 13] |= 0x30;
        var tensors = file.Tensors.Select(t => t.Name == "fc1.weight_int4" ? SafeTensor.FromBytes(t.Name, [5, 14], packed) : t).ToList();
        string message = Assert.Throws<InvalidDataException>(() =>
            QuantizedModelFile.Load(new SafeTensorsFile(tensors, file.Metadata).ToBytes(), "pad.safetensors")).Message;
        Assert.Contains("pad.safetensors", message);
        Assert.Contains("'fc1.weight_int4' row 2", message);
        Assert.Contains("high nibble", message);
    }

    [Fact]
    public void A_four_bit_network_exports_to_onnx_as_int8_codes_with_identical_logits()
    {
        QuantizedNetwork q = QuantizeSeed(4, new Dictionary<string, int> { ["fc2"] = 8 });
        QuantizedNetwork back = OnnxModel.Load(OnnxExporter.Export(q), "int4.onnx").Int8!;
        foreach ((QuantizedWeightedLayer a, QuantizedWeightedLayer b) in q.Layers.OfType<QuantizedWeightedLayer>().Zip(back.Layers.OfType<QuantizedWeightedLayer>()))
        {
            Assert.Equal(a.Weights, b.Weights);
        }
        FloatTensor x = TestData.FloatTensor(11, [7, 1, 32, 32]);
        float[] expected = new float[70], actual = new float[70];
        q.Predict(x.Data, 7, expected);
        back.Predict(x.Data, 7, actual);
        Assert.Equal(expected, actual);
    }
}

/// <summary>The 4-bit path allocates nothing per call either (process-wide counter: run alone).</summary>
[Collection(ProcessWideMeasurements.Name)]
public class Int4AllocationTests
{
    [Theory]
    [InlineData(1, 1)]
    [InlineData(64, 2)]
    public void Predict_with_four_bit_layers_allocates_nothing_after_warm_up(int batch, int threads)
    {
        QuantizedNetwork q = Int4WeightsTests.QuantizeSeed(8, new Dictionary<string, int> { ["fc1"] = 4, ["conv2"] = 4 });
        float[] inputs = TestData.Uniform(batch * 1024, 3), logits = new float[batch * 10];
        for (int i = 0; i < 3; i++)
        {
            q.Predict(inputs, batch, logits, threads);
        }
        Assert.Equal(0, ProcessWideMeasurements.LeastAllocated(() =>
        {
            for (int i = 0; i < 10; i++)
            {
                q.Predict(inputs, batch, logits, threads);
            }
        }));
    }
}
