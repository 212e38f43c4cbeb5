// SPDX-License-Identifier: MIT
// Archives that carry a program dressed as a document: a member name such
// as "invoice.pdf.exe" or "scan.jpg      .scr" in a zip file. The names of
// zip members are stored in clear (local and central headers), so this
// also fires when the member itself could not be unpacked (encrypted).
rule Zip_Double_Extension_Executable
{
    meta:
        description = "zip member named like a document but ending in a program extension"
    strings:
        // anchored on the central directory record ("PK\x01\x02", the
        // name starts 46 bytes in): a rare literal for YARA's atom, so plain
        // text with many dots does not wake the regex up at every "."
        $name = /PK\x01\x02[\x00-\xff]{42}[^\x00]{0,200}\.(pdf|docx?|xlsx?|pptx?|rtf|txt|jpe?g|png|gif|html?)[ _]{0,40}\.(exe|scr|pif|com|bat|cmd|cpl|js|jse|vbs|vbe|wsf|hta|lnk|jar|msi)(\x00|PK|[\x00-\x1f])/ nocase
    condition:
        uint32(0) == 0x04034b50 and $name
}

// A Windows shortcut (.lnk) whose target runs a script host: the usual way
// a zipped "document" starts PowerShell. Header: size 0x4C, then the
// ShellLink CLSID 00021401-0000-0000-C000-000000000046.
rule LNK_Starts_Script_Host
{
    meta:
        description = "Windows shortcut that launches PowerShell, cmd, mshta, wscript or certutil"
    strings:
        $ps = "powershell" nocase ascii wide
        $cmd = "cmd.exe" nocase ascii wide
        $hta = "mshta" nocase ascii wide
        $ws = "wscript" nocase ascii wide
        $cu = "certutil" nocase ascii wide
    condition:
        uint32(0) == 0x0000004c and uint32(4) == 0x00021401 and any of them
}
