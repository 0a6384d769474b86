from edgeseg.markdown import table_head


def test_a_table_head_is_the_titles_and_one_separator_per_column():
    assert table_head("model", "int8 mIoU", "latency 2 thr") == [
        "| model | int8 mIoU | latency 2 thr |",
        "|---|---|---|",
    ]
