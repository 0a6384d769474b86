"""The `environment` every report records tells apart the CPUs that gave different figures."""

from edgeseg._keras import ISA_FLAGS, cpu_fields, numeric_environment

# Two processors of /proc/cpuinfo as Linux writes them (abridged); only the first is read.
CPUINFO = """processor\t: 0
vendor_id\t: AuthenticAMD
cpu family\t: 26
model\t\t: 2
model name\t: AMD EPYC
cache size\t: 1024 KB
flags\t\t: fpu avx2 fma avx512f avx512_vnni avx512_bf16 avx_vnni

processor\t: 1
model name\t: another
"""


def test_the_first_processor_fields_are_read_by_name():
    fields = cpu_fields(CPUINFO)
    assert (fields["model name"], fields["cpu family"], fields["model"], fields["cache size"]) == (
        "AMD EPYC",
        "26",
        "2",
        "1024 KB",
    )
    assert "avx512_vnni" in fields["flags"].split()


def test_the_environment_names_the_cpu_generation_and_its_kernel_instruction_sets():
    environment = numeric_environment()
    assert {"cpu", "cpu_family_model", "cpu_cache", "cpu_isa", "ONEDNN_MAX_CPU_ISA"} <= set(environment)
    assert set(environment["cpu_isa"].split()) <= set(ISA_FLAGS)
