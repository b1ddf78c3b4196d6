using Palisade.Events;

namespace Palisade.Tests;

/// <summary>Tetragon's permission and flags of file, path and linux_binprm arguments.</summary>
public sealed class FileArgTextTests
{
    [Theory]
    [InlineData(0x8000 | 0x1A4, "-rw-r--r--")]
    [InlineData(0x4000 | 0x1ED, "drwxr-xr-x")]
    [InlineData(0xA000 | 0x1FF, "lrwxrwxrwx")]
    [InlineData(0x2000 | 0x1B6, "crw-rw-rw-")]
    [InlineData(0x6000 | 0x1B0, "brw-rw----")]
    [InlineData(0x1000 | 0x180, "prw-------")]
    [InlineData(0xC000 | 0x1FF, "srwxrwxrwx")]
    // setuid, setgid and sticky: lower case over x, upper case where x is not set.
    [InlineData(0x8000 | 0x800 | 0x1ED, "-rwsr-xr-x")]
    [InlineData(0x8000 | 0x800 | 0x1A4, "-rwSr--r--")]
    [InlineData(0x8000 | 0x400 | 0x1ED, "-rwxr-sr-x")]
    [InlineData(0x8000 | 0x400 | 0x1A4, "-rw-r-Sr--")]
    [InlineData(0x4000 | 0x200 | 0x1FF, "drwxrwxrwt")]
    [InlineData(0x4000 | 0x200 | 0x1FE, "drwxrwxrwT")]
    // No type bits: only the permissions, as Tetragon writes them.
    [InlineData(0x1ED, "rwxr-xr-x")]
    // Not known.
    [InlineData(0, "")]
    public void PermissionIsTheModeAsLsWritesIt(uint mode, string expected) => Assert.Equal(expected, FileArgText.Permission(mode));

    [Fact]
    public void FlagsSayWhenThePathWasCutShort()
    {
        Assert.Equal("unresolvedPathComponents", FileArgText.Flags(truncated: true));
        Assert.Equal("", FileArgText.Flags(truncated: false));
    }
}
