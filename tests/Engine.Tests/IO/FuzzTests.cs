using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using Engine.Data;
using Engine.Inference;
using Engine.IO;
using Engine.Layers;
using Engine.Quantization;
using Engine.Tests.Data;

namespace Engine.Tests.IO;

/// <summary>
/// Mutated float, int8, gradient-statistics and IDX files made from valid seeds: every case must either load (and, for a
/// model, predict finite scores) or throw an <see cref="InvalidDataException"/> whose message names the file. Anything
/// else is a failure reported with its mutation. ENGINE_FUZZ_CASES sets the number of random cases (default 6,000 on
/// top of the deterministic truncations and bombs); ENGINE_FUZZ_REPORT names a file for the counts.
/// </summary>
public sealed partial class FuzzTests(ITestOutputHelper output)
{
    private const string FloatName = "fuzzed.float.safetensors", Int8Name = "fuzzed.int8.safetensors";
    private const string StatsName = "fuzzed.grad_stats.safetensors", IdxName = "fuzzed-idx-ubyte";

    private enum Target { Float, FloatNoArchitecture, Int8, Stats, IdxImages, IdxLabels, IdxImagesGzip, IdxLabelsGzip }

    private sealed class Seeds
    {
        public Seeds()
        {
            Network = SeedNetwork.Create(11, conv1Channels: 2, conv2Channels: 2, hidden: 4);
            float mean = 0.1007f, std = 0.2761f;
            Float = ModelFile.ToBytes(Network, mean, std, [1, 32, 32]);
            var tensors = SafeTensorsFile.Read(Float, "seed").Tensors;
            FloatNoArchitecture = new SafeTensorsFile(tensors, new Dictionary<string, string> { ["input_mean"] = "0.1007", ["input_std"] = "0.2761" }).ToBytes();
            QuantizedNetwork q = Quantizer.Quantize(Network, new InMemoryBatches(TestData.Uniform(16 * 1024, 5, 0f, 3f), [1, 32, 32]), 16, mean, std);
            Int8 = QuantizedModelFile.ToBytes(q);
            Stats = NumericFaultTests.StatisticsBytes(Network);
            byte[] pixels = Enumerable.Range(0, 3 * 5 * 4).Select(i => (byte)(i * 37)).ToArray();
            IdxImages = TempIdxDirectory.Build(pixels, 3, 5, 4);
            IdxLabels = TempIdxDirectory.Build([1, 7, 3, 9], 4);
        }

        public Sequential Network { get; }
        public byte[] Float { get; }
        public byte[] FloatNoArchitecture { get; }
        public byte[] Int8 { get; }
        public byte[] Stats { get; }
        public byte[] IdxImages { get; }
        public byte[] IdxLabels { get; }

        public byte[] Of(Target t) => t switch
        {
            Target.Float => Float,
            Target.FloatNoArchitecture => FloatNoArchitecture,
            Target.Int8 => Int8,
            Target.Stats => Stats,
            Target.IdxImages => IdxImages,
            Target.IdxLabels => IdxLabels,
            Target.IdxImagesGzip => TempIdxDirectory.Gzip(IdxImages),
            _ => TempIdxDirectory.Gzip(IdxLabels),
        };
    }

    private sealed class Tally
    {
        public readonly SortedDictionary<string, (int Loaded, int Refused)> ByKind = new(StringComparer.Ordinal);
        public readonly List<string> Failures = [];
        public int Cases;

        public void Add(string kind, bool loaded)
        {
            ByKind.TryGetValue(kind, out var c);
            ByKind[kind] = loaded ? (c.Loaded + 1, c.Refused) : (c.Loaded, c.Refused + 1);
            Cases++;
        }
    }

    [Fact]
    public void Mutated_files_load_and_predict_finitely_or_are_refused_with_an_invalid_data_exception_naming_the_file()
    {
        int randomCases = int.TryParse(Environment.GetEnvironmentVariable("ENGINE_FUZZ_CASES"), CultureInfo.InvariantCulture, out int n) ? n : 6000;
        var seeds = new Seeds();
        var tally = new Tally();
        var random = new Random(20261201);
        var clock = System.Diagnostics.Stopwatch.StartNew();

        // Deterministic: every valid seed loads; truncation at every header byte (and a few data bytes) of every file kind.
        foreach (Target t in Enum.GetValues<Target>())
        {
            byte[] seed = seeds.Of(t);
            Run(seeds, t, seed, "seed", tally);
            int headerEnd = IsSafeTensors(t) ? 8 + (int)BinaryPrimitives.ReadUInt64LittleEndian(seed) : Math.Min(seed.Length, 40);
            for (int length = 0; length <= headerEnd && length < seed.Length; length++)
            {
                Run(seeds, t, seed[..length], $"truncate:{length}", tally);
            }
            for (int i = 0; i < 8; i++)
            {
                int length = random.Next(headerEnd, seed.Length);
                Run(seeds, t, seed[..length], $"truncate:{length}", tally);
            }
        }
        foreach ((string kind, byte[] bytes, Target target) in Bombs(seeds))
        {
            Run(seeds, target, bytes, kind, tally);
        }

        Target[] targets = Enum.GetValues<Target>();
        for (int i = 0; i < randomCases; i++)
        {
            Target t = targets[random.Next(targets.Length)];
            (string kind, byte[] bytes) = Mutate(seeds, t, random);
            Run(seeds, t, bytes, kind, tally);
        }

        string report = $"{tally.Cases} cases in {clock.Elapsed.TotalSeconds:F1} s, {tally.ByKind.Values.Sum(c => c.Loaded)} loaded, "
            + $"{tally.ByKind.Values.Sum(c => c.Refused)} refused, {tally.Failures.Count} failures\n"
            + string.Concat(tally.ByKind.Select(k => $"  {k.Key,-40} loaded {k.Value.Loaded,8}  refused {k.Value.Refused,8}\n"));
        output.WriteLine(report);
        if (Environment.GetEnvironmentVariable("ENGINE_FUZZ_REPORT") is { Length: > 0 } reportPath)
        {
            File.WriteAllText(reportPath, report + string.Join("\n", tally.Failures.Take(50)));
        }
        Assert.True(tally.Failures.Count == 0, $"{tally.Failures.Count} failures:\n{string.Join("\n", tally.Failures.Take(20))}");
    }

    private static bool IsSafeTensors(Target t) => t is Target.Float or Target.FloatNoArchitecture or Target.Int8 or Target.Stats;

    private static void Run(Seeds seeds, Target target, byte[] bytes, string mutation, Tally tally)
    {
        string kind = $"{target}/{mutation.Split(':')[0]}";
        string name = target switch
        {
            Target.Float or Target.FloatNoArchitecture => FloatName,
            Target.Int8 => Int8Name,
            Target.Stats => StatsName,
            _ => IdxName,
        };
        try
        {
            switch (target)
            {
                case Target.Stats:
                    GradientStatisticsFile.FromFile(SafeTensorsFile.Read(bytes, name), name, seeds.Network, [1, 32, 32]);
                    break;
                case Target.IdxImages or Target.IdxImagesGzip:
                    IdxReader.ReadStream(new MemoryStream(bytes), name, 3);
                    break;
                case Target.IdxLabels or Target.IdxLabelsGzip:
                    IdxReader.ReadStream(new MemoryStream(bytes), name, 1);
                    break;
                default:
                    Predict(Predictor.Load(bytes, name), name);
                    break;
            }
            tally.Add(kind, loaded: true);
        }
        catch (InvalidDataException e) when (e.Message.Contains(name, StringComparison.Ordinal))
        {
            tally.Add(kind, loaded: false);
        }
        catch (Exception e)
        {
            tally.Add(kind, loaded: false);
            tally.Failures.Add($"{target} {mutation}: {e.GetType().Name}: {e.Message}");
        }
    }

    private static void Predict(Predictor model, string name)
    {
        InputPreprocessing p = model.Preprocessing;
        int h = Math.Min(28, p.Height), w = Math.Min(28, p.Width);
        byte[] pixels = new byte[p.Channels * h * w];
        for (int i = 0; i < pixels.Length; i++)
        {
            pixels[i] = (byte)(i * 53 % 256);
        }
        float[] input = new float[model.InputLength];
        float[] scores = new float[model.OutputLength];
        model.PreparePixels(pixels, h, w, input);
        model.Predict(input, scores);
        int bad = Array.FindIndex(scores, s => !float.IsFinite(s));
        if (bad >= 0)
        {
            throw new InvalidOperationException($"{name} loaded, but score {bad} is {scores[bad]}.");
        }
    }

    private static IEnumerable<(string Kind, byte[] Bytes, Target Target)> Bombs(Seeds seeds)
    {
        // Headers promising far more than the (compressed) file holds.
        yield return ("bomb:promise-100MB", TempIdxDirectory.Gzip(TempIdxDirectory.Build([1, 2], 99_999_999)), Target.IdxLabelsGzip);
        yield return ("bomb:promise-max", TempIdxDirectory.Gzip(TempIdxDirectory.Build([1], int.MaxValue)), Target.IdxLabelsGzip);
        yield return ("bomb:promise-product", TempIdxDirectory.Gzip(TempIdxDirectory.Build([1], 65536, 65536, 65536)), Target.IdxImagesGzip);
        // A real bomb: 4 labels, then 64 MB of zeros that compress to about 64 KB.
        byte[] tail = new byte[64 << 20];
        byte[] labels = [.. seeds.IdxLabels, .. tail];
        yield return ("bomb:trailing-64MB", TempIdxDirectory.Gzip(labels), Target.IdxLabelsGzip);
        // Two gzip members, the second corrupt.
        byte[] gz = TempIdxDirectory.Gzip(seeds.IdxLabels);
        yield return ("bomb:two-members", [.. gz, .. gz[..^3]], Target.IdxLabelsGzip);
        // Safetensors header lengths past the file, huge and zero.
        foreach (ulong length in new ulong[] { 0, 1, 7, ulong.MaxValue, 1UL << 63, 100_000_001, 99_999_999 })
        {
            foreach (Target t in new[] { Target.Float, Target.Int8, Target.Stats })
            {
                byte[] b = (byte[])seeds.Of(t).Clone();
                BinaryPrimitives.WriteUInt64LittleEndian(b, length);
                yield return ($"huge:header-length-{length}", b, t);
            }
        }
    }

    private static (string Kind, byte[] Bytes) Mutate(Seeds seeds, Target t, Random random)
    {
        byte[] seed = seeds.Of(t);
        if (!IsSafeTensors(t))
        {
            return MutateIdx(t, seed, random);
        }
        int choice = random.Next(100);
        return choice switch
        {
            < 15 => ("bitflip", BitFlips(seed, random, 8 + (int)BinaryPrimitives.ReadUInt64LittleEndian(seed))),
            < 22 => ("bitflip-data", BitFlips(seed, random, seed.Length)),
            < 42 => MutateHeaderText(seed, random),
            < 70 => MutateMetadata(seed, t, random),
            < 85 => MutateTensor(seed, random),
            _ => MutateNumbers(seed, random),
        };
    }

    private static byte[] BitFlips(byte[] seed, Random random, int limit)
    {
        byte[] b = (byte[])seed.Clone();
        int flips = 1 + random.Next(4);
        for (int i = 0; i < flips; i++)
        {
            b[random.Next(Math.Min(limit, b.Length))] ^= (byte)(1 << random.Next(8));
        }
        return b;
    }

    private static (string Header, byte[] Data) Split(byte[] file)
    {
        int n = (int)BinaryPrimitives.ReadUInt64LittleEndian(file);
        return (Encoding.UTF8.GetString(file, 8, n), file[(8 + n)..]);
    }

    private static byte[] Join(string header, byte[] data)
    {
        byte[] h = Encoding.UTF8.GetBytes(header);
        byte[] file = new byte[8 + h.Length + data.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(file, (ulong)h.Length);
        h.CopyTo(file, 8);
        data.CopyTo(file, 8 + h.Length);
        return file;
    }

    private static string ReplaceOne(string text, Regex pattern, Random random, Func<Match, string> replacement)
    {
        MatchCollection matches = pattern.Matches(text);
        if (matches.Count == 0)
        {
            return text;
        }
        Match m = matches[random.Next(matches.Count)];
        return text[..m.Index] + replacement(m) + text[(m.Index + m.Length)..];
    }

    private static readonly string[] DTypes = ["F32,F64", " F32", "+1", "F16,I64", "F64", "F32", "F16", "BF16", "I64", "I32", "I16", "I8", "U8", "BOOL", "Bool", "", "f32", "1", "U16", "F8_E4M3"];
    private static readonly string[] Shapes = ["[]", "[0]", "[-1]", "[1]", "[2147483647]", "[2147483648]", "[4294967296]", "[1.5]", "[1e3]", "[2,2]", "[65536,65536]", "[1,1,1,1,1,1,1,1,1]", "[\"1\"]", "[null]", "{}", "[2147483647,2147483647,2147483647]"];
    private static readonly string[] Offsets = ["[0]", "[0,0]", "[0,4,8]", "[-1,4]", "[4,0]", "[0,9223372036854775807]", "[0,18446744073709551615]", "[9223372036854775807,9223372036854775807]", "[0,4.0]", "[\"0\",\"4\"]", "[]", "[0,1e2]"];

    private static (string, byte[]) MutateHeaderText(byte[] seed, Random random)
    {
        (string header, byte[] data) = Split(seed);
        string kind;
        switch (random.Next(9))
        {
            case 0:
                kind = "json-dtype";
                header = ReplaceOne(header, DTypeRegex(), random, _ => $"\"dtype\":\"{DTypes[random.Next(DTypes.Length)]}\"");
                break;
            case 1:
                kind = "json-shape";
                header = ReplaceOne(header, ShapeRegex(), random, _ => $"\"shape\":{Shapes[random.Next(Shapes.Length)]}");
                break;
            case 2:
                kind = "json-offsets";
                header = ReplaceOne(header, OffsetsRegex(), random, _ => $"\"data_offsets\":{Offsets[random.Next(Offsets.Length)]}");
                break;
            case 3:
                kind = "json-duplicate-key";
                header = ReplaceOne(header, random.Next(2) == 0 ? DTypeRegex() : ShapeRegex(), random, m => m.Value + "," + m.Value);
                break;
            case 4:
                kind = "json-duplicate-entry";
                header = ReplaceOne(header, EntryRegex(), random, m => m.Value + "," + m.Value);
                break;
            case 5:
                kind = "json-duplicate-metadata";
                header = header.Replace("\"__metadata__\":{", "\"__metadata__\":{\"format\":\"engine.float\",", StringComparison.Ordinal);
                break;
            case 6:
                kind = "json-empty-name";
                header = ReplaceOne(header, EntryRegex(), random, m => "\"\"" + m.Value[(m.Value.IndexOf(':') )..]);
                break;
            case 7:
                kind = "json-structure";
                int at = random.Next(header.Length);
                header = random.Next(2) == 0
                    ? header.Remove(at, 1)
                    : header.Insert(at, "{}[]\",:-0 \\"[random.Next(11)].ToString());
                break;
            default:
                kind = "json-unknown-field";
                header = ReplaceOne(header, DTypeRegex(), random, m => m.Value + (random.Next(2) == 0 ? ",\"x\":{\"k\":1,\"k\":2}" : ",\"x\":[{\"k\":[1]}]"));
                break;
        }
        // Usually the length prefix is fixed up so that the edit reaches the parser; sometimes it is left stale.
        byte[] file = Join(header, data);
        if (random.Next(8) == 0)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(file, BinaryPrimitives.ReadUInt64LittleEndian(seed));
        }
        return (kind, file);
    }

    private static readonly string[] ShapesText = ["1,32,32", "1,33,35", "1,36,36", "1,64,64", "1,8192,8192", "1,4096,4096", "32768,65536,1", "4096,17,61681", "1,32", "1,32,32,1", "0,32,32", "-1,32,32", "1,,32", " 1,32,32", "1024", "1, 32, 32", "2,32,32", "1,2147483647,2", "", "a"];
    private static readonly string[] Numbers = ["NaN", "Infinity", "-Infinity", "1e-45", "1e-38", "0", "-0", "-1", "3.4e38", "-3.4e38", "1e30", "1e6", "0.5", "1", "abc", "", " 0.1", "0x10", "1e400"];
    private static readonly string[] Kinds = ["conv2d(3,1,1)", "conv2d(3,1,1,relu)", "linear", "linear(relu)", "relu", "flatten", "avgpool2d(4,4)", "avgpool2d(1,1)", "avgpool2d(0,4)", "conv2d(3,1,2147483637)", "conv2d(3,1,1", "relu(1)", "flatten()", "dense"];

    private static (string, byte[]) MutateMetadata(byte[] seed, Target t, Random random)
    {
        var file = SafeTensorsFile.Read(seed, "seed");
        var meta = new Dictionary<string, string>(file.Metadata);
        string[] keys = ["architecture", "architecture", "architecture", "input_shape", "input_mean", "input_std", "format", "logits", "activation_dtype", "rounding"];
        string key = keys[random.Next(keys.Length)];
        string kind = "meta-" + key;
        if (random.Next(12) == 0)
        {
            meta.Remove(key);
            kind += "-removed";
        }
        else
        {
            meta.TryGetValue(key, out string? old);
            meta[key] = key switch
            {
                "architecture" => MutateArchitecture(old ?? (t == Target.Int8
                    ? "conv1=conv2d(3,1,1,relu);conv2=conv2d(3,1,1,relu);pool=avgpool2d(4,4);flatten=flatten;fc1=linear(relu);fc2=linear"
                    : "conv1=conv2d(3,1,1);relu1=relu;conv2=conv2d(3,1,1);relu2=relu;pool=avgpool2d(4,4);flatten=flatten;fc1=linear;relu3=relu;fc2=linear"), random),
                "input_shape" => ShapesText[random.Next(ShapesText.Length)],
                "input_mean" or "input_std" => Numbers[random.Next(Numbers.Length)],
                "format" => new[] { "engine.float", "engine.int8", "engine.grad_stats", "engine.floa", "" }[random.Next(5)],
                "logits" => new[] { "int32_accumulator", "dequantized_output", "fp32" }[random.Next(3)],
                "activation_dtype" => new[] { "uint8", "int8" }[random.Next(2)],
                _ => new[] { "half_away_from_zero", "half_even" }[random.Next(2)],
            };
        }
        return (kind, new SafeTensorsFile(file.Tensors, meta).ToBytes());
    }

    private static string MutateArchitecture(string text, Random random)
    {
        var entries = text.Split(';').ToList();
        int i = random.Next(entries.Count);
        switch (random.Next(8))
        {
            case 0:
                int at = random.Next(text.Length);
                return text.Remove(at, 1);
            case 1:
                int pos = random.Next(text.Length + 1);
                return text.Insert(pos, "();=,.-0123456789 r"[random.Next(19)].ToString());
            case 2:
                entries.RemoveAt(i);
                break;
            case 3:
                entries.Insert(i, entries[random.Next(entries.Count)]);
                break;
            case 4:
                int j = random.Next(entries.Count);
                (entries[i], entries[j]) = (entries[j], entries[i]);
                break;
            case 5:
                entries[i] = entries[i][..(entries[i].IndexOf('=') + 1)] + Kinds[random.Next(Kinds.Length)];
                break;
            case 6:
                return NumberRegex().Replace(text, m => random.Next(4) == 0
                    ? new[] { "0", "-1", "2147483637", "65537", "99999999999", "2", "8", "5" }[random.Next(8)]
                    : m.Value);
            default:
                entries[i] = new[] { "", ".", "a.b", "conv1(" }[random.Next(4)] + entries[i][entries[i].IndexOf('=')..];
                break;
        }
        return string.Join(";", entries);
    }

    private static (string, byte[]) MutateTensor(byte[] seed, Random random)
    {
        var file = SafeTensorsFile.Read(seed, "seed");
        var tensors = file.Tensors.ToList();
        int index = random.Next(tensors.Count);
        SafeTensor t = tensors[index];
        string kind;
        if (t.ElementCount == 0)
        {
            return ("tensor-empty", seed);
        }
        switch (t.DType)
        {
            case SafeTensorDType.F32 when random.Next(5) > 0:
            {
                float[] v = t.ToFloats();
                v[random.Next(v.Length)] = new[] { float.NaN, float.PositiveInfinity, float.NegativeInfinity, 1e38f, -3e38f, 1e30f, 1e10f, float.Epsilon, 0f, -0f }[random.Next(10)];
                tensors[index] = SafeTensor.FromFloats(t.Name, t.Shape, v);
                kind = "tensor-f32-value";
                break;
            }
            case SafeTensorDType.F64 when random.Next(5) > 0:
            {
                double[] v = t.ToDoubles();
                v[random.Next(v.Length)] = new[] { double.NaN, double.PositiveInfinity, double.NegativeInfinity, -1.0, -1e-300, 1e308, 0.0 }[random.Next(7)];
                tensors[index] = SafeTensor.FromDoubles(t.Name, t.Shape, v);
                kind = "tensor-f64-value";
                break;
            }
            case SafeTensorDType.I32 or SafeTensorDType.I64 or SafeTensorDType.I8 when random.Next(5) > 0:
            {
                byte[] raw = (byte[])t.Data.Clone();
                int size = SafeTensor.ElementSize(t.DType), at = random.Next(raw.Length / size) * size;
                byte fill = random.Next(2) == 0 ? (byte)0xFF : (byte)0x80;
                raw.AsSpan(at, size).Fill(0xFF);
                raw[at + size - 1] = fill == 0xFF ? (byte)0x7F : (byte)0x80;
                tensors[index] = SafeTensor.FromRaw(t.Name, t.DType, t.Shape, raw);
                kind = "tensor-int-extreme";
                break;
            }
            default:
            {
                // Same bytes under another dtype of the same size, or a reshaped tensor.
                SafeTensorDType[] sameSize = Enum.GetValues<SafeTensorDType>().Where(d => SafeTensor.ElementSize(d) == SafeTensor.ElementSize(t.DType)).ToArray();
                SafeTensorDType dtype = sameSize[random.Next(sameSize.Length)];
                int[] shape = random.Next(2) == 0 ? t.Shape : [(int)t.ElementCount];
                tensors[index] = SafeTensor.FromRaw(t.Name, dtype, shape, t.Data);
                kind = "tensor-retyped";
                break;
            }
        }
        return (kind, new SafeTensorsFile(tensors, file.Metadata).ToBytes());
    }

    private static (string, byte[]) MutateNumbers(byte[] seed, Random random)
    {
        (string header, byte[] data) = Split(seed);
        string[] huge = ["4294967296", "9223372036854775807", "9223372036854775808", "18446744073709551616", "-1", "1e400", "0.5", "99999999999999999999", "2147483648", "0"];
        header = ReplaceOne(header, NumberRegex(), random, _ => huge[random.Next(huge.Length)]);
        return ("huge-number", Join(header, data));
    }

    private static (string, byte[]) MutateIdx(Target t, byte[] raw, Random random)
    {
        bool gzip = t is Target.IdxImagesGzip or Target.IdxLabelsGzip;
        byte[] b = (byte[])raw.Clone();
        string kind;
        switch (random.Next(6))
        {
            case 0:
                kind = "bitflip";
                b = BitFlips(raw, random, raw.Length);
                break;
            case 1:
            {
                kind = "huge-dimension";
                int dims = raw[3];
                int[] values = [0, -1, int.MaxValue, int.MinValue, 65536, 99_999_999, 100_000_001, 2];
                BinaryPrimitives.WriteInt32BigEndian(b.AsSpan(4 + 4 * random.Next(dims)), values[random.Next(values.Length)]);
                break;
            }
            case 2:
                kind = "magic";
                b[random.Next(4)] = (byte)random.Next(256);
                break;
            case 3:
                kind = "trailing";
                b = [.. raw, .. new byte[1 + random.Next(5000)]];
                break;
            case 4:
                kind = "truncate";
                b = raw[..random.Next(raw.Length)];
                break;
            default:
                kind = "gzip-bitflip";
                byte[] compressed = TempIdxDirectory.Gzip(raw);
                return (kind, BitFlips(compressed, random, compressed.Length));
        }
        return (kind, gzip ? TempIdxDirectory.Gzip(b) : b);
    }

    [GeneratedRegex("\"dtype\":\"[^\"]*\"")]
    private static partial Regex DTypeRegex();

    [GeneratedRegex("\"shape\":\\[[^\\]]*\\]")]
    private static partial Regex ShapeRegex();

    [GeneratedRegex("\"data_offsets\":\\[[^\\]]*\\]")]
    private static partial Regex OffsetsRegex();

    [GeneratedRegex("\"[^\"]+\":\\{\"dtype\"[^}]*\\}")]
    private static partial Regex EntryRegex();

    [GeneratedRegex("[0-9]+")]
    private static partial Regex NumberRegex();
}
