use super::*;
use std::str::FromStr;

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).expect("valid test decimal")
}

fn p(s: &str) -> Decimal {
    parse_decimal(s).unwrap_or_else(|e| panic!("{s:?} should parse: {e}"))
}

#[test]
fn tenths_add_exactly() {
    assert_eq!(p("0.1") + p("0.2"), p("0.3"));
    assert_eq!((p("0.1") + p("0.2")).to_string(), "0.3");
    assert_eq!(p("0.1"), Decimal::new(1, 1));
}

#[test]
fn round_yuan_half_up_away_from_zero() {
    assert_eq!(round_yuan(dec("2.345")), dec("2.35"));
    assert_eq!(round_yuan(dec("-2.345")), dec("-2.35"));
    assert_eq!(round_yuan(dec("2.344")), dec("2.34"));
    assert_eq!(round_yuan(dec("-2.344")), dec("-2.34"));
    assert_eq!(round_yuan(dec("2.3449999")), dec("2.34"));
    assert_eq!(round_yuan(dec("2.335")), dec("2.34")); // not banker's (2.34 either way)
    assert_eq!(round_yuan(dec("2.325")), dec("2.33")); // banker's would give 2.32
    assert_eq!(round_yuan(dec("0.005")), dec("0.01"));
    assert_eq!(round_yuan(dec("-0.005")), dec("-0.01"));
    assert_eq!(round_yuan(dec("0.004999")), dec("0.00"));
}

#[test]
fn round_yuan_always_two_places() {
    assert_eq!(round_yuan(dec("2000")).to_string(), "2000.00");
    assert_eq!(round_yuan(dec("2.5")).to_string(), "2.50");
    assert_eq!(round_yuan(dec("2.345")).to_string(), "2.35");
    assert_eq!(round_yuan(Decimal::ZERO).to_string(), "0.00");
    assert_eq!(round_yuan(dec("0.001")).to_string(), "0.00");
    assert_eq!(round_yuan(dec("-0.001")).scale(), 2);
    assert_eq!(round_yuan(dec("26460.000")).to_string(), "26460.00");
}

#[test]
fn round_yuan_extremes_do_not_panic() {
    assert_eq!(round_yuan(Decimal::MAX), Decimal::MAX);
    assert_eq!(round_yuan(Decimal::MIN), Decimal::MIN);
    let tiny = Decimal::new(5, 28);
    assert_eq!(round_yuan(tiny).to_string(), "0.00");
    // Largest value that still takes two places.
    let big = dec("792281625142643375935439503.35");
    assert_eq!(round_yuan(big), big);
}

#[test]
fn shortfall_loss_prints_as_money() {
    let expected_kva = p("400");
    let billed_kva = p("320");
    let price = p("25.00");
    let loss = (expected_kva - billed_kva) * price;
    assert_eq!(loss.to_string(), "2000.00");
    assert_eq!(round_yuan(loss).to_string(), "2000.00");
}

#[test]
fn parses_plain_and_signed_decimals() {
    assert_eq!(p("12"), dec("12"));
    assert_eq!(p("-12.30"), dec("-12.30"));
    assert_eq!(p("+12.30"), dec("12.30"));
    assert_eq!(p("0"), Decimal::ZERO);
    assert_eq!(p("-0"), Decimal::ZERO);
    assert_eq!(p(".5"), dec("0.5"));
    assert_eq!(p("5."), dec("5"));
    assert_eq!(p("007.50"), dec("7.5"));
    assert_eq!(p("  12.5\n"), dec("12.5"));
}

#[test]
fn keeps_the_written_scale() {
    assert_eq!(p("25.00").to_string(), "25.00");
    assert_eq!(p("0.00").to_string(), "0.00");
    assert_eq!(p("-1.10").to_string(), "-1.10");
    assert_eq!(p("1.50e1").to_string(), "15.0");
}

#[test]
fn parses_exponents() {
    assert_eq!(p("1e3"), dec("1000"));
    assert_eq!(p("1E3"), dec("1000"));
    assert_eq!(p("1.5E-2"), dec("0.015"));
    assert_eq!(p("1.5e+2"), dec("150"));
    assert_eq!(p("-2.5e-1"), dec("-0.25"));
    assert_eq!(p("0e999999999999999999999"), Decimal::ZERO);
    assert_eq!(p("1e-28"), Decimal::new(1, 28));
    assert_eq!(p("1e28"), dec("10000000000000000000000000000"));
    assert_eq!(p("10e-29"), Decimal::new(1, 28));
    assert_eq!(p("123456e-3"), dec("123.456"));
}

#[test]
fn range_limits() {
    assert_eq!(p("79228162514264337593543950335"), Decimal::MAX);
    assert_eq!(p("-79228162514264337593543950335"), Decimal::MIN);
    assert_eq!(p("79228162514264337593543950335.000"), Decimal::MAX);
    assert_eq!(p("0.0000000000000000000000000001"), Decimal::new(1, 28));
    assert_eq!(p("0.00000000000000000000000000010000"), Decimal::new(1, 28));
    assert!(matches!(
        parse_decimal("79228162514264337593543950336"),
        Err(DecimalError::OutOfRange { .. })
    ));
    assert!(matches!(
        parse_decimal("1e29"),
        Err(DecimalError::OutOfRange { .. })
    ));
    assert!(matches!(
        parse_decimal("-1e999999999999"),
        Err(DecimalError::OutOfRange { .. })
    ));
    assert!(matches!(
        parse_decimal("1000000000000000000000000000000000"),
        Err(DecimalError::OutOfRange { .. })
    ));
    assert!(matches!(
        parse_decimal("1e-29"),
        Err(DecimalError::TooPrecise { .. })
    ));
    assert!(matches!(
        parse_decimal("0.00000000000000000000000000001"),
        Err(DecimalError::TooPrecise { .. })
    ));
    assert!(matches!(
        parse_decimal("8.0000000000000000000000000001"),
        Err(DecimalError::TooPrecise { .. })
    ));
    // 29 digits at scale 28 still fit while the mantissa is below 2^96.
    assert_eq!(
        p("1.0000000000000000000000000001"),
        Decimal::try_from_i128_with_scale(10i128.pow(28) + 1, 28).expect("fits")
    );
    assert!(matches!(
        parse_decimal("1e-99999999999999"),
        Err(DecimalError::TooPrecise { .. })
    ));
}

#[test]
fn long_inputs_do_not_panic() {
    let many_digits = "9".repeat(10_000);
    assert!(matches!(
        parse_decimal(&many_digits),
        Err(DecimalError::OutOfRange { .. })
    ));
    let many_zeros = format!("1.{}", "0".repeat(10_000));
    assert_eq!(p(&many_zeros), dec("1"));
    let long_garbage = "x".repeat(10_000);
    let msg = parse_decimal(&long_garbage).unwrap_err().to_string();
    assert!(
        msg.len() < 400,
        "error message should not echo the whole input"
    );
}

#[test]
fn rejects_empty_non_finite_and_garbage() {
    assert_eq!(parse_decimal(""), Err(DecimalError::Empty));
    assert_eq!(parse_decimal("   "), Err(DecimalError::Empty));
    for text in ["NaN", "nan", "inf", "-inf", "+Infinity", "infinity"] {
        assert!(
            matches!(parse_decimal(text), Err(DecimalError::NotFinite { .. })),
            "{text}"
        );
    }
    for text in [
        "-", "+", ".", "e3", "1e", "1e+", "1.2.3", "0x10", "1_000", "1,5", "1 000", "12a", "--1",
        "+-1", "1e3.5", "١٢", "1d", "null", "\"1\"",
    ] {
        assert!(
            matches!(parse_decimal(text), Err(DecimalError::Syntax { .. })),
            "{text:?}"
        );
    }
}

#[test]
fn error_messages_say_what_and_what_is_expected() {
    let msg = parse_decimal("12a").unwrap_err().to_string();
    assert!(
        msg.contains("\"12a\"") && msg.contains("unexpected character") && msg.contains("expected"),
        "{msg}"
    );
    let msg = parse_decimal("NaN").unwrap_err().to_string();
    assert!(msg.contains("not a finite number"), "{msg}");
    let msg = parse_decimal("").unwrap_err().to_string();
    assert!(msg.contains("empty") && msg.contains("expected"), "{msg}");
    let msg = parse_decimal("1e40").unwrap_err().to_string();
    assert!(msg.contains("out of range"), "{msg}");
}

#[test]
fn round_trips_decimal_display() {
    // Deterministic spread of mantissas and scales, incl. extremes.
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    for i in 0..5_000u32 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let mantissa = (i128::from(seed) << 32 | i128::from(i)) % (1i128 << 95);
        let signed = if seed & 1 == 0 { mantissa } else { -mantissa };
        let scale = (seed >> 8) as u32 % 29;
        let value = Decimal::try_from_i128_with_scale(signed, scale).expect("in range");
        let text = value.to_string();
        assert_eq!(parse_decimal(&text), Ok(value), "{text}");
        assert_eq!(
            parse_decimal(&text).map(|d| d.scale()),
            Ok(value.scale()),
            "{text}"
        );
        // The same value in scientific notation.
        let sci = format!("{}e-{}", signed, scale);
        assert_eq!(parse_decimal(&sci), Ok(value), "{sci}");
    }
}

#[test]
fn agrees_with_rust_decimal_from_str_exact_on_plain_text() {
    for text in [
        "0.1",
        "-0.0001",
        "123456789.987654321",
        "79228162514264337593543950335",
        "0.0000000000000000000000000001",
    ] {
        assert_eq!(
            parse_decimal(text).ok(),
            Decimal::from_str_exact(text).ok(),
            "{text}"
        );
    }
}
#[test]
fn round_yuan_matches_integer_half_up_on_every_mill() {
    // Every amount with three decimals in ±20 元, against integer arithmetic.
    for mills in -20_000i64..=20_000 {
        let x = Decimal::new(mills, 3);
        let magnitude = (mills.abs() + 5) / 10; // half-up on |x| in fen
        let fen = if mills < 0 { -magnitude } else { magnitude };
        assert_eq!(round_yuan(x), Decimal::new(fen, 2), "{x}");
        assert_eq!(round_yuan(x).scale(), 2, "{x}");
    }
}

#[test]
fn random_texts_never_panic_and_agree_with_rust_decimal() {
    const ALPHABET: &[u8] = b"0123456789.eE+- 9";
    let mut seed: u64 = 0xD1B5_4A32_D192_ED03;
    for _ in 0..50_000 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let len = (seed % 12) as usize;
        let text: String = (0..len)
            .map(|k| ALPHABET[((seed >> (k * 5)) as usize) % ALPHABET.len()] as char)
            .collect();
        let Ok(value) = parse_decimal(&text) else {
            continue;
        };
        // A parsed value prints and re-parses to itself.
        assert_eq!(parse_decimal(&value.to_string()), Ok(value), "{text:?}");
        // Where rust_decimal also reads the plain form exactly, it agrees.
        let plain = text.trim();
        if !plain.contains(['e', 'E']) {
            if let Ok(theirs) = Decimal::from_str_exact(plain) {
                assert_eq!(value, theirs, "{text:?}");
            }
        }
    }
}
