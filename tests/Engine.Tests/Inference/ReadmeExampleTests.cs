using System.Reflection;
using System.Text.RegularExpressions;
using Engine.Data;
using Engine.Inference;
using Engine.Tests.Data;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;

namespace Engine.Tests.Inference;

/// <summary>
/// The README's embedding example is compiled from the README itself (the first C# block under "## Embedding") and run
/// on the bundled float and int8 models, so the example a newcomer copies always builds and answers correctly.
/// </summary>
[Collection(ProcessWideMeasurements.Name)]   // it redirects the process's console
public partial class ReadmeExampleTests
{
    [Theory]
    [InlineData("seed1.safetensors")]
    [InlineData("seed1.int8.safetensors")]
    public void The_readme_example_compiles_and_classifies_a_digit(string modelFile)
    {
        string model = Path.Combine(AppContext.BaseDirectory, "data", "models", modelFile);
        MnistDataset digits = BundledMnist.Test;
        string pixels = Path.Combine(Path.GetTempPath(), $"digit-{Guid.NewGuid():N}.raw");
        File.WriteAllBytes(pixels, digits.Pixels.AsSpan(0, 784).ToArray());
        try
        {
            string output = Run(CompileExample(), [model, pixels]);

            // What the example prints must be what the predictor says directly.
            Predictor predictor = Predictor.Load(model);
            var input = new float[predictor.InputLength];
            predictor.PreparePixels(digits.Pixels.AsSpan(0, 784), 28, 28, input);
            int[] top = new int[3];
            predictor.TopK(input, top);
            Assert.Equal($"digit {top[0]} (then {top[1]}, {top[2]})", output.Trim());
            Assert.Equal(digits.Labels[0], top[0]);   // and a trained model gets this digit right
        }
        finally
        {
            File.Delete(pixels);
        }
    }

    [Fact]
    public void The_readme_example_is_at_most_ten_lines_of_code()
    {
        string[] lines = ReadmeExample().Split('\n').Where(l => l.Trim().Length > 0 && !l.TrimStart().StartsWith("using ", StringComparison.Ordinal)).ToArray();
        Assert.InRange(lines.Length, 1, 10);
    }

    private static string ReadmeExample()
    {
        string readme = File.ReadAllText(Path.Combine(RepositoryPaths.Root, "README.md"));
        int section = readme.IndexOf("\n## Embedding", StringComparison.Ordinal);
        Assert.True(section >= 0, "README.md has no '## Embedding' section");
        Match block = CSharpBlock().Match(readme, section);
        Assert.True(block.Success, "the Embedding section has no ```csharp block");
        return block.Groups["code"].Value;
    }

    private static Assembly CompileExample()
    {
        string[] platform = ((string)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES")!).Split(Path.PathSeparator);
        var references = platform.Select(p => MetadataReference.CreateFromFile(p))
            .Append(MetadataReference.CreateFromFile(typeof(Predictor).Assembly.Location));
        var options = new CSharpCompilationOptions(OutputKind.ConsoleApplication, nullableContextOptions: NullableContextOptions.Enable);
        string code = "using System;\nusing System.IO;\nusing System.Linq;\n" + ReadmeExample();   // the implicit usings of a new console app
        CSharpCompilation compilation = CSharpCompilation.Create("ReadmeExample",
            [CSharpSyntaxTree.ParseText(code, new CSharpParseOptions(LanguageVersion.Latest))], references, options);
        using var image = new MemoryStream();
        var result = compilation.Emit(image);
        Assert.True(result.Success, "the README example does not compile:\n" +
            string.Join("\n", result.Diagnostics.Where(d => d.Severity >= DiagnosticSeverity.Warning)));
        return Assembly.Load(image.ToArray());
    }

    private static string Run(Assembly program, string[] args)
    {
        TextWriter original = Console.Out;
        using var captured = new StringWriter();
        Console.SetOut(captured);
        try
        {
            program.EntryPoint!.Invoke(null, [args]);
        }
        finally
        {
            Console.SetOut(original);
        }
        return captured.ToString();
    }


    [GeneratedRegex(@"```csharp\n(?<code>.*?)```", RegexOptions.Singleline)]
    private static partial Regex CSharpBlock();
}
