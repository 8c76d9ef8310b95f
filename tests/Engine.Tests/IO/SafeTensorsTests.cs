using System.Buffers.Binary;
using System.Text;
using Engine.IO;

namespace Engine.Tests.IO;

public sealed class SafeTensorsTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "engine-st-" + Guid.NewGuid().ToString("N")[..12]);

    public SafeTensorsTests() => Directory.CreateDirectory(_dir);

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static SafeTensorsFile Sample() => new(
        [
            SafeTensor.FromFloats("w", [2, 3], [1f, -2f, 3.5f, float.MaxValue, float.Epsilon, -0f]),
            SafeTensor.FromDoubles("d", [2], [Math.PI, -1e300]),
            SafeTensor.FromSBytes("q", [4], [-128, -1, 0, 127]),
            SafeTensor.FromBytes("u", [3], [0, 128, 255]),
            SafeTensor.FromInt32s("i", [1, 1, 2], [int.MinValue, int.MaxValue]),
            SafeTensor.FromInt64s("l", [], [long.MinValue]),
            SafeTensor.FromFloats("empty", [0, 5], []),
        ],
        new Dictionary<string, string> { ["format"] = "engine.float", ["note"] = "ünïcödé \"quoted\"" });

    [Fact]
    public void Every_dtype_round_trips_through_a_file_with_metadata_scalars_and_empty_tensors()
    {
        string path = Path.Combine(_dir, "all.safetensors");
        Sample().Write(path);
        SafeTensorsFile back = SafeTensorsFile.Read(path);
        Assert.Equal(["w", "d", "q", "u", "i", "l", "empty"], back.Tensors.Select(t => t.Name));
        Assert.Equal([1f, -2f, 3.5f, float.MaxValue, float.Epsilon, -0f], back["w"].ToFloats());
        Assert.Equal([2, 3], back["w"].Shape);
        Assert.Equal([Math.PI, -1e300], back["d"].ToDoubles());
        Assert.Equal(new sbyte[] { -128, -1, 0, 127 }, back["q"].ToSBytes());
        Assert.Equal(new byte[] { 0, 128, 255 }, back["u"].ToBytes());
        Assert.Equal([int.MinValue, int.MaxValue], back["i"].ToInt32s());
        Assert.Equal([long.MinValue], back["l"].ToInt64s());
        Assert.Empty(back["l"].Shape);
        Assert.Equal(0, back["empty"].ElementCount);
        Assert.Equal("ünïcödé \"quoted\"", back.Metadata["note"]);
        Assert.Equal(File.ReadAllBytes(path), Sample().ToBytes());
        Assert.Equal(back.ToBytes(), SafeTensorsFile.Read(File.ReadAllBytes(path), "x").ToBytes());
    }

    [Fact]
    public void Layout_is_the_documented_one_byte_for_byte()
    {
        byte[] bytes = new SafeTensorsFile([SafeTensor.FromFloats("a", [2], [1f, 2f]), SafeTensor.FromSBytes("b", [1], [-1])],
            new Dictionary<string, string> { ["k"] = "v" }).ToBytes();
        ulong n = BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        string json = Encoding.UTF8.GetString(bytes, 8, (int)n);
        Assert.Equal(
            "{\"__metadata__\":{\"k\":\"v\"},\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"I8\",\"shape\":[1],\"data_offsets\":[8,9]}}",
            json.TrimEnd(' '));
        Assert.Equal(0, (8 + (int)n) % 8);
        Assert.Equal(8 + (int)n + 9, bytes.Length);
        Assert.Equal([0x00, 0x00, 0x80, 0x3F, 0x00, 0x00, 0x00, 0x40, 0xFF], bytes[(8 + (int)n)..]);
    }

    private static byte[] Build(string json, int dataBytes)
    {
        byte[] header = Encoding.UTF8.GetBytes(json);
        var bytes = new byte[8 + header.Length + dataBytes];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)header.Length);
        header.CopyTo(bytes, 8);
        return bytes;
    }

    public static TheoryData<string, int, string> Hostile() => new()
    {
        { "[1,2]", 0, "not a JSON object" },
        { "{\"a\":", 0, "not valid JSON" },
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4, "run past" },
        { "{\"a\":{\"dtype\":\"F99\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "unknown dtype 'F99'" },
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8, "non-negative integer" },
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, "needs 12" },
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[2147483647,2147483647,2147483647],\"data_offsets\":[0,8]}}", 8, "tensor 'a'" },
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8, "begin <= end" },
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}", 8, "two integers" },
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8, "required" },
        { "{\"a\":{\"dtype\":1,\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "dtype is not a string" },
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, "overlap" },
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, "hole" },
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 8, "cover 4 bytes" },
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, "twice" },
        { "{\"__metadata__\":{\"k\":1}}", 0, "expected a string" },
        { "{\"__metadata__\":[]}", 0, "__metadata__ is not an object" },
        { "{} {}", 0, "not valid JSON" },
        { "{\"a\":{\"dtype\":\"F32,F64\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "unknown dtype 'F32,F64'" },
        { "{\"a\":{\"dtype\":\" F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "unknown dtype ' F32'" },
        { "{\"a\":{\"dtype\":\"+1\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "unknown dtype '+1'" },
        { "{\"a\":{\"dtype\":\"F16,I64\",\"shape\":[2],\"data_offsets\":[0,4]}}", 4, "unknown dtype 'F16,I64'" },
        { "{\"a\":{\"dtype\":\"f32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "unknown dtype 'f32'" },
        { "{\"a\":{\"dtype\":\"Bool\",\"shape\":[4],\"data_offsets\":[0,4]}}", 4, "unknown dtype 'Bool'" },
        { "{\"a\":{\"dtype\":\"F32\",\"dtype\":\"I32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "key 'dtype' appears twice" },
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "key 'shape' appears twice" },
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"data_offsets\":[0,4]}}", 4, "key 'data_offsets' appears twice" },
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"x\":{\"k\":1,\"k\":2}}}", 4, "key 'k' appears twice" },
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"x\":[{\"k\":1},{\"j\":[{\"k\":1,\"k\":2}]}]}}", 4, "key 'k' appears twice" },
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[1.0],\"data_offsets\":[0,4]}}", 4, "non-negative integer" },
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[-0],\"data_offsets\":[0,4]}}", 4, "non-negative integer" },
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4.0]}}", 4, "non-negative integer" },
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,4]}}", 4, "two integers" },
        { "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}}", 4, "appears twice" },
        { "{\"\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "empty name" },
    };

    [Theory]
    [MemberData(nameof(Hostile))]
    public void Hostile_headers_are_rejected_with_the_file_and_problem_named(string json, int dataBytes, string expected)
    {
        var e = Assert.Throws<InvalidDataException>(() => SafeTensorsFile.Read(Build(json, dataBytes), "evil.safetensors"));
        Assert.StartsWith("evil.safetensors: ", e.Message);
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void Booleans_are_written_and_read_as_BOOL_and_unknown_fields_without_duplicates_are_still_ignored()
    {
        byte[] bytes = new SafeTensorsFile([SafeTensor.FromRaw("b", SafeTensorDType.Bool, [2], [0, 1])]).ToBytes();
        Assert.Contains("\"dtype\":\"BOOL\"", Encoding.UTF8.GetString(bytes));
        Assert.Equal(SafeTensorDType.Bool, SafeTensorsFile.Read(bytes, "b")["b"].DType);
        var read = SafeTensorsFile.Read(Build("{\"a\":{\"dtype\":\"BOOL\",\"shape\":[4],\"data_offsets\":[0,4],\"x\":{\"k\":[{\"k\":1}],\"j\":2}}}", 4), "x");
        Assert.Equal([4], read["a"].Shape);
    }

    [Fact]
    public void Header_lengths_that_are_zero_huge_or_past_the_end_are_rejected_before_allocation()
    {
        foreach (ulong n in new ulong[] { 0, ulong.MaxValue, 1UL << 40, 100_000_001, 50 })
        {
            var bytes = new byte[16];
            BinaryPrimitives.WriteUInt64LittleEndian(bytes, n);
            var e = Assert.Throws<InvalidDataException>(() => SafeTensorsFile.Read(bytes, "h.safetensors"));
            Assert.Contains("header length", e.Message);
        }
        Assert.Contains("too short", Assert.Throws<InvalidDataException>(() => SafeTensorsFile.Read(new byte[5], "s")).Message);
    }

    [Fact]
    public void Every_truncation_of_a_valid_file_is_a_clear_format_error()
    {
        byte[] bytes = Sample().ToBytes();
        string path = Path.Combine(_dir, "cut.safetensors");
        for (int length = 0; length < bytes.Length; length++)
        {
            File.WriteAllBytes(path, bytes[..length]);
            var e = Assert.Throws<InvalidDataException>(() => SafeTensorsFile.Read(path));
            Assert.StartsWith("cut.safetensors: ", e.Message);
        }
    }

    [Fact]
    public void Asking_for_the_wrong_dtype_or_a_missing_tensor_names_it()
    {
        SafeTensorsFile file = SafeTensorsFile.Read(Sample().ToBytes(), "m.safetensors");
        Assert.Contains("tensor 'q' is I8, expected F32", Assert.Throws<InvalidDataException>(() => file["q"].ToFloats()).Message);
        Assert.Contains("m.safetensors: tensor 'nope' is missing", Assert.Throws<InvalidDataException>(() => file["nope"]).Message);
        Assert.False(file.TryGet("nope", out _));
    }

    [Fact]
    public void Duplicate_or_reserved_names_and_wrong_byte_counts_are_refused_when_building()
    {
        var t = SafeTensor.FromFloats("x", [1], [1f]);
        Assert.Throws<ArgumentException>(() => new SafeTensorsFile([t, t]));
        Assert.Throws<ArgumentException>(() => new SafeTensorsFile([SafeTensor.FromFloats("__metadata__", [1], [1f])]));
        Assert.Throws<ArgumentException>(() => SafeTensor.FromFloats("x", [2], [1f]));
        Assert.Throws<ArgumentException>(() => SafeTensor.FromFloats("x", [-1], []));
    }

    [Fact]
    public void A_failed_write_leaves_the_previous_file_untouched_and_no_temporary_file()
    {
        string path = Path.Combine(_dir, "model.safetensors");
        Sample().Write(path);
        byte[] before = File.ReadAllBytes(path);

        // The target is a directory: the rename fails after the temporary file was fully written.
        string blocked = Path.Combine(_dir, "blocked.safetensors");
        Directory.CreateDirectory(blocked);
        Assert.ThrowsAny<IOException>(() => Sample().Write(blocked));

        // The target directory does not exist: nothing can be created.
        Assert.ThrowsAny<IOException>(() => Sample().Write(Path.Combine(_dir, "missing", "m.safetensors")));

        Assert.Equal(before, File.ReadAllBytes(path));
        Assert.Equal(["blocked.safetensors", "model.safetensors"], Directory.GetFileSystemEntries(_dir).Select(Path.GetFileName).Order());
    }

    [Fact]
    public void A_write_removes_stale_temporaries_of_its_own_target_left_by_killed_writes_and_nothing_else()
    {
        string target = Path.Combine(_dir, "model.safetensors");
        string Temp(string name) => Path.Combine(_dir, name);
        DateTime old = DateTime.UtcNow.AddHours(-1);
        string stale1 = Temp($".model.safetensors.{Guid.NewGuid():N}.tmp"), stale2 = Temp($".model.safetensors.{Guid.NewGuid():N}.tmp");
        string fresh = Temp($".model.safetensors.{Guid.NewGuid():N}.tmp"), held = Temp($".model.safetensors.{Guid.NewGuid():N}.tmp");
        string other = Temp($".other.safetensors.{Guid.NewGuid():N}.tmp"), notOurs = Temp(".model.safetensors.backup.tmp");
        foreach (string f in new[] { stale1, stale2, fresh, held, other, notOurs })
        {
            File.WriteAllBytes(f, [1, 2, 3]);
            if (f != fresh)
            {
                File.SetLastWriteTimeUtc(f, old);
            }
        }
        using (new FileStream(held, FileMode.Open, FileAccess.ReadWrite, FileShare.None))
        {
            Sample().Write(target);   // a write in progress elsewhere holds its temporary: it is left alone
        }
        Assert.False(File.Exists(stale1));
        Assert.False(File.Exists(stale2));
        Assert.True(File.Exists(fresh));
        Assert.True(File.Exists(held));
        Assert.True(File.Exists(other));
        Assert.True(File.Exists(notOurs));
        Assert.Equal(Sample().ToBytes(), File.ReadAllBytes(target));
        Sample().Write(target);
        Assert.False(File.Exists(held));   // no longer held: removed by the next write
    }

    [Fact]
    public void Overwriting_replaces_the_file_atomically()
    {
        string path = Path.Combine(_dir, "m.safetensors");
        File.WriteAllText(path, "old");
        new SafeTensorsFile([SafeTensor.FromFloats("x", [1], [7f])]).Write(path);
        Assert.Equal([7f], SafeTensorsFile.Read(path)["x"].ToFloats());
        Assert.Single(Directory.GetFiles(_dir));
    }
}
