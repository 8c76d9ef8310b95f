using Engine.Data;
using Engine.IO;
using Engine.Kernels;
using Engine.Quantization;

namespace Engine.Tests.Quantization;

/// <summary>
/// The direct conv1 kernel, the convolution with its pooling fused, and the batch-1 band split must give the bytes the
/// separate layers gave (GEMM, requantization, pooling, one thread), on odd shapes and on the bundled int8 model.
/// </summary>
public class FusedInt8PathTests
{
    public static TheoryData<KernelVariant> Variants()
    {
        var data = new TheoryData<KernelVariant>();
        foreach (KernelVariant v in GemmS8U8.SupportedVariants)
        {
            data.Add(v);
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(Variants))]
    public void Direct_kernel_equals_gemm_then_scalar_requantization_on_odd_shapes(KernelVariant variant)
    {
        ulong seed = 11;
        int cases = 0;
        foreach (int m in new[] { 1, 3, 5, 32, 33 })
        foreach (int n in new[] { 1, 15, 16, 17, 47 })
        foreach (int k in new[] { 1, 4, 9, 13, 16 })
        foreach (bool asymmetric in new[] { false, true })
        {
            var random = new SeededRandom(seed++);
            bool extreme = random.NextInt(4) == 0;
            sbyte[] a = new sbyte[m * k];
            byte[] b = new byte[k * n];
            for (int i = 0; i < a.Length; i++)
            {
                a[i] = extreme ? (random.NextInt(2) == 0 ? (sbyte)-127 : (sbyte)127) : (sbyte)(random.NextInt(255) - 127);
            }
            for (int i = 0; i < b.Length; i++)
            {
                b[i] = extreme ? (byte)255 : (byte)random.NextInt(256);
            }
            int[] addends = new int[m], mantissas = new int[m], shifts = new int[m];
            int[] zeroPoints = asymmetric ? new int[m] : [];
            for (int c = 0; c < m; c++)
            {
                addends[c] = random.NextInt(200_001) - 100_000;
                // Multipliers from 2^-20 to 4: most codes land inside [0, 255], some clamp at either end.
                (mantissas[c], shifts[c]) = FixedPoint.QuantizeMultiplier(Math.Pow(2, -20 + 22 * random.NextDouble()));
                if (asymmetric)
                {
                    zeroPoints[c] = random.NextInt(256) - 128;
                }
            }
            int zeroPoint = random.NextInt(256), low = random.NextInt(2) == 0 ? zeroPoint : 0;

            // Reference: the three-loop GEMM, the zero-point correction, the scalar requantization, channel by channel.
            int[] acc = new int[m * n];
            GemmS8U8.Multiply(m, n, k, a, k, b, n, acc, n, KernelVariant.Scalar);
            byte[] expected = new byte[m * n];
            for (int c = 0; c < m; c++)
            {
                for (int j = 0; j < n; j++)
                {
                    int columnSum = 0;
                    for (int p = 0; p < k; p++)
                    {
                        columnSum += b[p * n + j];
                    }
                    acc[c * n + j] -= (asymmetric ? zeroPoints[c] : 0) * columnSum;
                }
                RequantizeS32.RowScalar<byte>(acc.AsSpan(c * n, n), addends[c], mantissas[c], shifts[c], zeroPoint, low, 255, expected.AsSpan(c * n, n));
            }

            int[] packedA = new int[GemmS8U8.PackedWeightsLength(m, k, variant)];
            byte[] packedB = new byte[GemmS8U8.PackedActivationsLength(k, n, variant)];
            GemmS8U8.PackWeights(m, k, a, k, packedA, variant);
            GemmS8U8.PackActivations(k, n, b, n, packedB, variant);
            int ldy = n + 3;                                     // rows apart by more than n: nothing written between them
            byte[] actual = Enumerable.Repeat((byte)0xA5, (m - 1) * ldy + n).ToArray();
            DirectConvQ8.MultiplyRequantize(m, n, k, packedA, packedB, addends, mantissas, shifts, zeroPoints, zeroPoint, low, 255, actual, ldy, variant);
            for (int c = 0; c < m; c++)
            {
                Assert.Equal(expected.AsSpan(c * n, n).ToArray(), actual.AsSpan(c * ldy, n).ToArray());
                if (c + 1 < m)
                {
                    Assert.All(actual.AsSpan(c * ldy + n, 3).ToArray(), v => Assert.Equal(0xA5, v));
                }
            }
            cases++;
        }
        Assert.Equal(5 * 5 * 5 * 2, cases);
    }

    private static QuantizedConv2d RandomConv(SeededRandom random, int inChannels, int outChannels, int kernel, int stride, int padding,
        bool perTensor, bool relu)
    {
        int depth = inChannels * kernel * kernel;
        sbyte[] weights = new sbyte[outChannels * depth];
        for (int i = 0; i < weights.Length; i++)
        {
            weights[i] = (sbyte)(random.NextInt(255) - 127);
        }
        int scales = perTensor ? 1 : outChannels;
        float[] weightScales = Enumerable.Range(0, scales).Select(_ => 0.001f + 0.01f * (float)random.NextDouble()).ToArray();
        int[] weightZeroPoints = Enumerable.Range(0, scales).Select(_ => perTensor ? random.NextInt(41) - 20 : 0).ToArray();
        int[] bias = Enumerable.Range(0, outChannels).Select(_ => random.NextInt(20_001) - 10_000).ToArray();
        var input = new QuantParams(0.02f, random.NextInt(100), 0, 255);
        var output = new QuantParams(0.05f + 0.05f * (float)random.NextDouble(), random.NextInt(60), 0, 255);
        return new QuantizedConv2d("conv", input, output, weights, [outChannels, inChannels, kernel, kernel], weightScales, weightZeroPoints,
            bias, relu, stride, padding);
    }

    private static byte[] RandomCodes(SeededRandom random, int length)
    {
        byte[] codes = new byte[length];
        for (int i = 0; i < codes.Length; i++)
        {
            codes[i] = (byte)random.NextInt(256);
        }
        return codes;
    }

    [Theory]
    [InlineData(1, 3, 1, 1, 7, 9, 4)]       // conv1-like, odd plane, fewer channels than a row block
    [InlineData(1, 3, 1, 1, 32, 32, 32)]    // conv1 itself
    [InlineData(1, 3, 2, 0, 9, 17, 5)]      // stride 2, no padding: packed through im2col
    [InlineData(5, 1, 1, 0, 4, 33, 6)]      // 1x1 over 5 channels: depth 5
    [InlineData(1, 4, 1, 2, 6, 5, 3)]       // depth 16, the deepest direct layer
    public void Direct_convolution_equals_the_gemm_path_byte_for_byte(int inChannels, int kernel, int stride, int padding, int h, int w, int outChannels)
    {
        var random = new SeededRandom((ulong)(inChannels * 1000 + kernel * 100 + h * 10 + w));
        foreach (bool perTensor in new[] { false, true })
        foreach (bool relu in new[] { false, true })
        {
            QuantizedConv2d conv = RandomConv(random, inChannels, outChannels, kernel, stride, padding, perTensor, relu);
            Assert.True(conv.UsesDirectKernel);
            int[] shape = [inChannels, h, w];
            const int samples = 3;
            byte[] input = RandomCodes(random, samples * inChannels * h * w);
            int outSize = QuantizedLayer.Size(conv.OutputShape(shape));
            byte[] direct = new byte[samples * outSize], gemm = new byte[samples * outSize];
            conv.Forward(input, shape, samples, direct, new QuantizedWorkspace());
            conv.ForwardViaGemm(input, shape, samples, gemm, new QuantizedWorkspace());
            Assert.Equal(gemm, direct);
        }
    }

    [Fact]
    public void Layers_deeper_than_the_direct_limit_keep_the_gemm()
    {
        var random = new SeededRandom(3);
        Assert.False(RandomConv(random, 2, 4, 3, 1, 1, false, true).UsesDirectKernel);          // depth 18
        Assert.True(RandomConv(random, 1, 4, 4, 1, 1, false, true).UsesDirectKernel);           // depth 16
    }

    [Theory]
    [InlineData(3, 10, 16, 4, 5)]     // 10 output rows, pool 4: two bands, rows 8 and 9 are never pooled
    [InlineData(2, 6, 32, 3, 7)]      // 32 columns, pool 3: windows end at column 30, 31 is never pooled
    [InlineData(32, 32, 32, 4, 64)]   // conv2 -> pool of the seed network
    [InlineData(4, 5, 48, 2, 9)]      // odd number of output rows
    [InlineData(2, 16, 16, 16, 2)]    // one band, one window per channel
    public void Pooled_convolution_equals_convolution_then_pooling_on_any_thread_count(int inChannels, int h, int w, int pool, int outChannels)
    {
        var random = new SeededRandom((ulong)(inChannels * 100 + h * 10 + pool));
        foreach (bool perTensor in new[] { false, true })
        {
            QuantizedConv2d conv = RandomConv(random, inChannels, outChannels, 3, 1, 1, perTensor, relu: true);
            int[] shape = [inChannels, h, w];
            Assert.True(conv.CanFusePooling(shape, pool));
            const int samples = 2;
            byte[] input = RandomCodes(random, samples * inChannels * h * w);
            int convSize = outChannels * h * w;
            byte[] convolved = new byte[samples * convSize];
            conv.ForwardViaGemm(input, shape, samples, convolved, new QuantizedWorkspace());
            var window = new ConvGeometry(outChannels, h, w, pool, pool, pool, pool, 0, 0);
            int pooledSize = outChannels * (h / pool) * (w / pool);
            byte[] expected = new byte[samples * pooledSize];
            for (int s = 0; s < samples; s++)
            {
                AvgPoolQ8.ForwardScalar<byte>(convolved.AsSpan(s * convSize, convSize), window, expected.AsSpan(s * pooledSize, pooledSize));
            }
            foreach (bool inTiles in new[] { true, false })
            foreach (int threads in new[] { 1, 2, 3 })
            {
                // Tile by tile (PooledGemmQ8, symmetric weights and windows dividing a panel) or a band of accumulators at a time.
                conv.PoolsInTiles = inTiles;
                QuantizedWorkspace[] workspaces = [new(), .. Enumerable.Range(0, threads).Select(_ => new QuantizedWorkspace())];
                byte[] actual = new byte[samples * pooledSize];
                conv.ForwardPooled(input, shape, samples, pool, actual, workspaces, 1, threads);
                Assert.Equal(expected, actual);
            }
        }
    }

    [Fact]
    public void Pooling_is_not_fused_where_bands_would_split_panels()
    {
        var random = new SeededRandom(5);
        QuantizedConv2d conv = RandomConv(random, 3, 4, 3, 1, 1, false, true);
        Assert.False(conv.CanFusePooling([3, 8, 12], 4));                                           // 12 columns: no whole panels
        Assert.False(RandomConv(random, 1, 4, 3, 1, 1, false, true).CanFusePooling([1, 16, 16], 4)); // a direct (shallow) layer
        Assert.True(conv.CanFusePooling([3, 8, 16], 4));
    }

    [Fact]
    public void Bundled_int8_model_gives_the_unfused_logits_on_the_test_digits_on_one_and_two_threads()
    {
        string path = Path.Combine(AppContext.BaseDirectory, "data", "models", "seed1.int8.safetensors");
        QuantizedNetwork fused = QuantizedModelFile.Load(File.ReadAllBytes(path), "seed1.int8.safetensors");
        QuantizedNetwork unfused = QuantizedModelFile.Load(File.ReadAllBytes(path), "seed1.int8.safetensors");
        unfused.Unfused = true;
        Assert.True(((QuantizedConv2d)fused.Layers[0]).UsesDirectKernel, "the seed network's conv1 takes the direct kernel");

        MnistDataset test = MnistDataset.Load(Path.Combine(AppContext.BaseDirectory, "data", "mnist"), MnistSplit.Test);
        IBatchSource source = BatchIterator.Sequential(test, test.Count, fused.InputMean, fused.InputStd);
        float[] images = new float[test.Count * 1024];
        source.FillBatch(0, 0, test.Count, images, new int[test.Count]);
        float[] expected = new float[test.Count * 10];
        unfused.Predict(images, test.Count, expected, threads: 1);

        float[] batch = new float[test.Count * 10];
        fused.Predict(images, test.Count, batch, threads: 2);
        Assert.Equal(expected, batch);
        fused.Predict(images, test.Count, batch, threads: 1);
        Assert.Equal(expected, batch);
        float[] one = new float[10], two = new float[10], split = new float[10];
        QuantizedNetwork splitting = QuantizedModelFile.Load(File.ReadAllBytes(path), "seed1.int8.safetensors");
        splitting.SplitSingleSample = true;
        for (int n = 0; n < test.Count; n += 7)
        {
            fused.Predict(images.AsSpan(n * 1024, 1024), 1, one, threads: 1);
            fused.Predict(images.AsSpan(n * 1024, 1024), 1, two, threads: 2);
            splitting.Predict(images.AsSpan(n * 1024, 1024), 1, split, threads: 2);
            Assert.Equal(expected.AsSpan(n * 10, 10).ToArray(), one);
            Assert.Equal(expected.AsSpan(n * 10, 10).ToArray(), two);
            Assert.Equal(expected.AsSpan(n * 10, 10).ToArray(), split);
        }

        // Every layer's codes, not only the logits: the trace runs the layers one by one (direct conv1 included).
        var fusedTrace = fused.Trace(images.AsSpan(0, 16 * 1024), 16);
        var unfusedTrace = unfused.Trace(images.AsSpan(0, 16 * 1024), 16);
        Assert.Equal(unfusedTrace.Select(t => t.Codes), fusedTrace.Select(t => t.Codes));
    }
}
