// SPDX-License-Identifier: MIT
// The EICAR anti-virus test file, found by YARA (engine 2) independently
// of ClamAV: the 68-byte string at the start of a file of at most 128
// bytes (the EICAR definition allows trailing white space).
rule EICAR_Test_File
{
    meta:
        description = "EICAR standard anti-virus test file"
        reference = "https://www.eicar.org/download-anti-malware-testfile/"
    strings:
        $eicar = "X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
    condition:
        $eicar at 0 and filesize <= 128
}
