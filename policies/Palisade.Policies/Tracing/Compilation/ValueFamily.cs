namespace Palisade.Policies.Tracing.Compilation;

/// <summary>What kind of value an argument holds, as its declared type and as the kernel reads it; the two must agree.</summary>
internal enum ValueFamily { Int, String, Sock, Cred, Other }

/// <summary>The <see cref="ValueFamily"/> of a declared argument type and of a slot kind.</summary>
internal static class ValueFamilies
{
    internal static ValueFamily OfType(string type) => type switch
    {
        "string" or "filename" or "file" or "path" or "fd" or "char_buf" or "char_iovec" or "linux_binprm" or "dentry" or "data_loc" or "const_buf" or "net_device" => ValueFamily.String,
        "sock" or "skb" or "sockaddr" or "socket" => ValueFamily.Sock,
        "cred" => ValueFamily.Cred,
        "int" or "uint64" or "ulong" or "uint32" or "sint64" or "int64" or "long" or "sint32" or "int32" or "size_t" or "sint16" or "int16"
            or "uint16" or "sint8" or "int8" or "uint8" or "capability" or "kernel_cap_t" or "cap_inheritable" or "cap_permitted" or "cap_effective"
            or "syscall64" or "uint" or "pointer" or "auto" => ValueFamily.Int,
        _ => ValueFamily.Other,
    };

    internal static ValueFamily OfSource(SlotKind kind) => kind switch
    {
        SlotKind.UserString or SlotKind.FdPath or SlotKind.RetFdPath or SlotKind.ExecPath or SlotKind.UserBuffer
            or SlotKind.KFile or SlotKind.KPath or SlotKind.KDentry or SlotKind.KBinprm or SlotKind.KString or SlotKind.KNetDev => ValueFamily.String,
        SlotKind.UserSockaddr or SlotKind.CtxSock or SlotKind.FdSock or SlotKind.RetFdSock or SlotKind.KSock or SlotKind.KSkb => ValueFamily.Sock,
        SlotKind.Cred or SlotKind.KCred => ValueFamily.Cred,
        SlotKind.SyscallArgs or SlotKind.KUserNs => ValueFamily.Other,
        _ => ValueFamily.Int,
    };
}
