"""Detector-level behaviour of the PII redaction engine: every identifier format,
invalid check digits, near misses, names and clean clinical text."""

from __future__ import annotations

import random

import pytest

from compliance.redaction import checksums, detect_entities


def found(text: str) -> list[tuple[str, str]]:
    return [(e.entity, e.text) for e in detect_entities(text)]


def types(text: str) -> list[str]:
    return [e.entity for e in detect_entities(text)]


def _break_last_digit(value: str) -> str:
    last = value[-1]
    return value[:-1] + ("0" if last != "0" else "1")


RNG = random.Random(1234)


# --- check digits ------------------------------------------------------------
@pytest.mark.parametrize("cpf", ["11144477735", "52998224725", "68695896900"])
def test_it_accepts_valid_cpf_check_digits(cpf):
    assert checksums.cpf_is_valid(cpf)


@pytest.mark.parametrize("cpf", ["11144477736", "52998224715", "11111111111", "1114447773"])
def test_it_rejects_invalid_cpf(cpf):
    assert not checksums.cpf_is_valid(cpf)


@pytest.mark.parametrize("cnpj", ["11222333000181", "12ABC34501DE35", "12abc34501de35"])
def test_it_accepts_numeric_and_alphanumeric_cnpj(cnpj):
    assert checksums.cnpj_is_valid(cnpj)


@pytest.mark.parametrize(
    "cnpj", ["11222333000182", "12ABC34501DE36", "12ABC34501DEA5", "1122233300018"]
)
def test_it_rejects_invalid_cnpj(cnpj):
    assert not checksums.cnpj_is_valid(cnpj)


def test_it_validates_both_cns_rules():
    assert checksums.cns_is_valid("700000000000005")  # 7/8/9: weighted sum mod 11
    for _ in range(50):
        definitive = checksums.generate_cns(RNG)
        provisional = checksums.generate_cns(RNG, provisional=True)
        assert definitive[0] in "12" and checksums.cns_is_valid(definitive)
        assert provisional[0] in "789" and checksums.cns_is_valid(provisional)
        assert not checksums.cns_is_valid(_break_last_digit(provisional))
    assert not checksums.cns_is_valid("300000000000005")  # no card starts with 3


def test_it_applies_the_sao_paulo_minas_rule_to_titulo_check_digits():
    # Sequence 10000001 leaves remainder 0: SP/MG turn the digit into 1, others keep 0.
    assert checksums.titulo_is_valid("100000010116")
    assert not checksums.titulo_is_valid("100000010006")
    assert checksums.titulo_is_valid("100000010302")
    assert checksums.titulo_is_valid("102385010671")
    assert not checksums.titulo_is_valid("102385012971")  # UF 29 does not exist


def test_it_validates_pis_cnh_and_luhn():
    for _ in range(30):
        pis = checksums.generate_pis(RNG)
        cnh = checksums.generate_cnh(RNG)
        assert checksums.pis_is_valid(pis) and not checksums.pis_is_valid(_break_last_digit(pis))
        assert checksums.cnh_is_valid(cnh) and not checksums.cnh_is_valid(_break_last_digit(cnh))
    assert checksums.luhn_is_valid("4111111111111111")
    assert not checksums.luhn_is_valid("4111111111111112")


# --- CPF -----------------------------------------------------------------------
@pytest.mark.parametrize(
    "value", ["111.444.777-35", "11144477735", "111 444 777 35", "111444777-35"]
)
def test_it_redacts_cpf_in_every_format(value):
    assert found(f"Paciente com documento {value} na ficha.") == [("CPF", value)]


@pytest.mark.parametrize("value", ["111.444.777-36", "11144477736"])
def test_it_keeps_cpf_with_invalid_check_digits_without_a_keyword(value):
    assert types(f"Documento {value} conferido.") == []


@pytest.mark.parametrize("value", ["111.444.777-36", "11144477736"])
def test_it_redacts_a_mistyped_cpf_right_after_its_keyword(value):
    # A typo in the check digit is still someone's CPF (issue 15).
    assert found(f"CPF {value}") == [("CPF", value)]


def test_it_keeps_a_repeated_digit_placeholder_after_the_keyword():
    assert types("CPF 000.000.000-00") == []


@pytest.mark.parametrize(
    "text",
    [
        "Código 111444777351 do kit.",  # 12 digits: not a CPF
        "Série 9111.444.777-35 do aparelho.",  # part of a longer number
        "Valor 111.444.777,35 no balancete.",  # decimal comma, not a CPF
    ],
)
def test_it_does_not_take_cpf_out_of_longer_numbers(text):
    assert "CPF" not in types(text)


# --- CNPJ ----------------------------------------------------------------------
@pytest.mark.parametrize(
    "value",
    [
        "11.222.333/0001-81",
        "11222333000181",
        "12.ABC.345/01DE-35",
        "12.abc.345/01de-35",
        "12ABC34501DE35",
    ],
)
def test_it_redacts_cnpj_numeric_and_alphanumeric(value):
    assert found(f"Faturar para {value} no fim do mês.") == [("CNPJ", value)]


def test_it_keeps_cnpj_with_invalid_check_digits_without_a_keyword():
    assert types("Empresa 11.222.333/0001-82 e 12.ABC.345/01DE-36") == []


def test_it_redacts_a_mistyped_cnpj_right_after_its_keyword():
    assert found("CNPJ 11.222.333/0001-82") == [("CNPJ", "11.222.333/0001-82")]


def test_it_requires_the_keyword_for_an_unformatted_all_letter_cnpj():
    value = "ABCDEFGHIJKL" + checksums._cnpj_digits("ABCDEFGHIJKL")
    assert checksums.cnpj_is_valid(value)
    assert types(f"Senha {value} do sistema") == []
    assert types(f"CNPJ {value}") == ["CNPJ"]


# --- RG (context-gated) --------------------------------------------------------
@pytest.mark.parametrize(
    "text,value",
    [
        ("RG 12.345.678-9 SSP/SP", "12.345.678-9"),
        ("RG: 12.345.678-X", "12.345.678-X"),
        ("rg 123456789", "123456789"),
        ("identidade nº MG-12.345.678", "MG-12.345.678"),
        ("carteira de identidade 1.234.567", "1.234.567"),
        ("RG da mãe: 23.456.789-0", "23.456.789-0"),
    ],
)
def test_it_redacts_rg_after_its_keyword(text, value):
    assert found(text) == [("RG", value)]


def test_it_leaves_rg_shaped_numbers_without_the_keyword():
    assert types("Lote 12.345.678-9 do fabricante") == []
    assert types("Foram 12.345.678 unidades vendidas") == []


# --- CNS -------------------------------------------------------------------------
def test_it_redacts_cns_in_every_format():
    for provisional in (False, True):
        d = checksums.generate_cns(RNG, provisional=provisional)
        for value in (
            d,
            f"{d[:3]} {d[3:7]} {d[7:11]} {d[11:]}",
            f"{d[:3]}.{d[3:7]}.{d[7:11]}.{d[11:]}",
        ):
            assert found(f"Cartão SUS {value}.") == [("CNS", value)]
            assert found(f"Ela trouxe o {value} hoje.") == [("CNS", value)]


def test_it_keeps_cns_with_invalid_check_digits_without_a_keyword():
    d = _break_last_digit(checksums.generate_cns(RNG, provisional=True))
    assert types(f"Documento {d[:3]} {d[3:7]} {d[7:11]} {d[11:]}") == []
    assert types(f"CNS {d[:3]} {d[3:7]} {d[7:11]} {d[11:]}") == ["CNS"]  # a typo, still a CNS


# --- PIS / PASEP / NIT -------------------------------------------------------------
def test_it_redacts_formatted_pis_anywhere_and_bare_pis_after_its_keyword():
    d = checksums.generate_pis(RNG)
    formatted = f"{d[:3]}.{d[3:8]}.{d[8:10]}-{d[10]}"
    assert found(f"Inscrição {formatted} no cadastro.") == [("PIS", formatted)]
    assert found(f"PIS {d}") == [("PIS", d)]
    assert found(f"NIT: {d[:10]}-{d[10]}") == [("PIS", f"{d[:10]}-{d[10]}")]
    assert found(f"PASEP {formatted}") == [("PIS", formatted)]


def test_it_keeps_pis_with_invalid_check_digit_without_a_keyword():
    d = _break_last_digit(checksums.generate_pis(RNG))
    assert "PIS" not in types(f"Documento {d[:3]}.{d[3:8]}.{d[8:10]}-{d[10]}")
    assert types(f"PIS {d[:3]}.{d[3:8]}.{d[8:10]}-{d[10]}") == ["PIS"]


# --- Título de eleitor -------------------------------------------------------------
@pytest.mark.parametrize(
    "value", ["1023 8501 0671", "102385010671", "1023 8501 06 71", "1000 0001 0116"]
)
def test_it_redacts_titulo_de_eleitor(value):
    assert found(f"Título de eleitor {value}.") == [("TITULO", value)]


def test_it_keeps_titulo_with_invalid_uf_or_check_digits_without_a_keyword():
    assert types("Documento 1023 8501 2971") == []  # UF 29
    assert types("Documento 1000 0001 0006") == []  # SP rule not applied
    assert types("Título 1023 8501 2971") == ["TITULO"]  # after its keyword: a typo


# --- CNH (context-gated) -------------------------------------------------------------
def test_it_redacts_cnh_only_after_its_keyword():
    d = checksums.generate_cnh(RNG)
    for text, value in [
        (f"CNH {d}", d),
        (f"CNH nº {d[:9]}-{d[9:]}", f"{d[:9]}-{d[9:]}"),
        (
            f"carteira de motorista {d[:3]} {d[3:6]} {d[6:9]} {d[9:]}",
            f"{d[:3]} {d[3:6]} {d[6:9]} {d[9:]}",
        ),
    ]:
        assert found(text) == [("CNH", value)]
    assert "CNH" not in types(f"Número {d} anotado.")


def test_it_keeps_cnh_with_invalid_check_digits_unless_right_after_its_keyword():
    d = _break_last_digit(checksums.generate_cnh(RNG))
    assert "CNH" not in types(f"Documento {d}")
    assert types(f"CNH {d}") == ["CNH"]


def test_it_types_an_eleven_digit_number_by_its_keyword():
    both = "52548145433"  # passes the CPF and the CNH check digits
    assert checksums.cpf_is_valid(both) and checksums.cnh_is_valid(both)
    assert found(f"CPF {both}") == [("CPF", both)]
    assert found(f"CNH {both}") == [("CNH", both)]


# --- CEP -------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text,value",
    [
        ("CEP 01310-100", "01310-100"),
        ("cep: 01310100", "01310100"),
        ("CEP 01.310-100", "01.310-100"),
        ("São Paulo/SP - 04538-132", "04538-132"),
    ],
)
def test_it_redacts_cep(text, value):
    assert found(text) == [("CEP", value)]


@pytest.mark.parametrize(
    "text", ["Protocolo 01310100 aberto", "Lote 12345-678", "validade 12345-678"]
)
def test_it_leaves_cep_shaped_numbers_without_context(text):
    assert types(text) == []


# --- Phones ------------------------------------------------------------------------
@pytest.mark.parametrize(
    "value",
    [
        "(11) 98765-4321",
        "(11) 3456-7890",
        "11 98765-4321",
        "11987654321",
        "+55 11 98765-4321",
        "+55 (11) 98765-4321",
        "+5511987654321",
        "(11)98765-4321",
        "11 9 8765-4321",
        "98765-4321",
        "(21) 2345.6789",
        "55 11 98765 4321",
        "(011) 98765-4321",
        "11 3456 7890",
    ],
)
def test_it_redacts_brazilian_phones_in_every_format(value):
    assert found(f"Ela pediu retorno no {value} amanhã.") == [("TELEFONE", value)]


def test_it_redacts_a_landline_without_area_code_only_after_a_phone_word():
    assert found("tel 3456-7890") == [("TELEFONE", "3456-7890")]
    assert types("Foram 3456-7890 ampolas") == []


@pytest.mark.parametrize(
    "text",
    [
        "Sequência 2034567890 interna",
        "Código 0800 123 4567",
        "Aplicadas 1000 2000 U",
        "Lote 9876-5432",
    ],
)
def test_it_leaves_numbers_that_are_not_brazilian_phones(text):
    assert "TELEFONE" not in types(text)  # 20 is no area code; 0800 is not personal


def test_it_still_redacts_the_number_when_the_area_code_is_mistyped():
    assert found("Ligar (20) 98765-4321") == [("TELEFONE", "(20) 98765-4321")]  # after "ligar"
    assert found("Anotado (20) 98765-4321") == [("TELEFONE", "98765-4321")]


# --- E-mail ------------------------------------------------------------------------
@pytest.mark.parametrize(
    "value", ["maria.silva@gmail.com", "JOAO_SOUZA88@EMPRESA.COM.BR", "ana+clinica@yahoo.com.br"]
)
def test_it_redacts_email_addresses(value):
    assert found(f"Enviar para {value}, obrigado.") == [("EMAIL", value)]


# --- Cards -------------------------------------------------------------------------
@pytest.mark.parametrize(
    "value",
    [
        "4111 1111 1111 1111",
        "4111-1111-1111-1111",
        "4111111111111111",
        "5555 5555 5555 4444",
        "3782 822463 10005",
        "6062 8288 8866 6688",
    ],
)
def test_it_redacts_luhn_valid_cards(value):
    assert checksums.luhn_is_valid("".join(c for c in value if c.isdigit()))
    assert found(f"Cartão {value}, 3 parcelas.") == [("CARTAO", value)]


@pytest.mark.parametrize("value", ["4111 1111 1111 1112", "1234 5678 9012 3452"])
def test_it_keeps_card_numbers_failing_luhn_or_issuer(value):
    assert "CARTAO" not in types(f"Cartão {value}")


def test_it_trims_a_number_typed_right_after_a_card():
    assert found("cartão 4111 1111 1111 1111 12 parcelas") == [("CARTAO", "4111 1111 1111 1111")]


# --- Dates of birth -------------------------------------------------------------------
@pytest.mark.parametrize(
    "text,value",
    [
        ("Paciente nascida em 12/03/1985, fototipo III.", "12/03/1985"),
        ("DN: 12/03/85", "12/03/85"),
        ("D.N. 12.03.1985", "12.03.1985"),
        ("data de nascimento: 12 de março de 1985", "12 de março de 1985"),
        ("nascido no dia 5/3/1990", "5/3/1990"),
        ("Data nasc.: 1985-03-12", "1985-03-12"),
        ("dt. nasc. 12-mar-1985", "12-mar-1985"),
    ],
)
def test_it_redacts_dates_of_birth_in_context(text, value):
    assert found(text) == [("DATA_NASCIMENTO", value)]


@pytest.mark.parametrize(
    "text",
    [
        "Aplicado em 12/03/2025 na glabela.",
        "Retorno 15/04/2025.",
        "nascida em 32/13/1985",
        "Nascimento do bebê previsto para março.",
    ],
)
def test_it_leaves_procedure_dates_and_impossible_dates(text):
    assert types(text) == []


# --- Addresses -------------------------------------------------------------------------
@pytest.mark.parametrize(
    "value",
    [
        "Rua Augusta, 1500",
        "Av. Paulista, nº 1000, apto 52",
        "Avenida Brasil 2000, bloco B, apto 101",
        "Travessa do Comércio, 12",
        "Alameda Santos, 45",
        "Rodovia SP-340, km 128",
        "Praça da Sé, s/n",
        "R. Dr. Arnaldo, 455, sala 3",
        "Rua 25 de Março, 300",
        "rua das Palmeiras 45",
    ],
)
def test_it_redacts_street_addresses(value):
    assert found(f"Mandar o kit para {value}.") == [("ENDERECO", value)]


def test_it_redacts_a_street_without_number_after_a_residence_word():
    assert found("A paciente mora na Rua Oscar Freire.") == [("ENDERECO", "Rua Oscar Freire")]


@pytest.mark.parametrize(
    "text", ["Caiu na rua 2 vezes.", "R. 2,5 mg de enzima", "Na Avenida principal há vagas."]
)
def test_it_leaves_street_words_that_are_not_addresses(text):
    assert types(text) == []


# --- Medical-record numbers ---------------------------------------------------------------
@pytest.mark.parametrize(
    "text,value",
    [
        ("prontuário 12345", "12345"),
        ("Prontuário nº 2024-00123", "2024-00123"),
        ("MRN 998877", "998877"),
        ("pront. AB-12345", "AB-12345"),
        ("registro hospitalar 2024/1234", "2024/1234"),
    ],
)
def test_it_redacts_medical_record_numbers(text, value):
    assert found(text) == [("PRONTUARIO", value)]


def test_it_leaves_product_registrations_and_short_numbers():
    assert types("Registro ANVISA 80102510045 na caixa") == []
    assert types("Ficha 2 preenchida") == []


# --- Names ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text,name",
    [
        ("Paciente Maria da Silva retorna hoje.", "Maria da Silva"),
        ("A paciente Thayná Zambon relata dor.", "Thayná Zambon"),  # names absent from the lists
        ("Dra. Ana aplicou a toxina.", "Ana"),
        ("Falei com o Sr. Oliveira.", "Oliveira"),
        ("Mãe: Edleuza Piovesan", "Edleuza Piovesan"),
        ("Responsável legal: Deuzimar Scopel.", "Deuzimar Scopel"),
        ("A filha, Lohane, vai trazer os exames.", "Lohane"),
        ("Nome: Kauane", "Kauane"),
        ("Cliente ana paula souza ligou", "ana paula souza"),
        ("PACIENTE: MARIA DAS DORES FERREIRA", "MARIA DAS DORES FERREIRA"),
        ("Juliana Pereira dos Santos ligou ontem.", "Juliana Pereira dos Santos"),
        ("Agendei Beatriz Souza e Silva para quinta.", "Beatriz Souza e Silva"),
        ("A Juliana fez bioestimulador.", "Juliana"),
        ("Sra. Glória Menezes retorna em março.", "Glória Menezes"),
        ("Ligou a D. Rosa, mãe da paciente.", "Rosa"),
    ],
)
def test_it_redacts_person_names(text, name):
    assert found(text) == [("NOME", name)]


def test_it_splits_two_people_joined_by_e():
    assert found("Hoje atendi Ana Souza e Beatriz Lima.") == [
        ("NOME", "Ana Souza"),
        ("NOME", "Beatriz Lima"),
    ]


@pytest.mark.parametrize(
    "text",
    [
        "Paciente veio de São Paulo para o procedimento.",
        "Encaminhada ao Hospital Santa Maria.",
        "Óleo de Rosa Mosqueta na cicatriz.",
        "Segunda sessão de Luz Pulsada em Março.",
        "Paciente usa Yasmin há 2 anos.",
        "Mãe: Hipotireoidismo; Pai: Câncer de Próstata.",
        "Esposa Grávida de 8 meses.",
        "Paciente Masculino, 45 anos.",
        "Mora em Mariana, MG.",
        "Vitamina D. Suplementar 2000 UI.",
        "Aplicado Botox, Dysport e Xeomin; Ácido Hialurônico 1 ml.",
        "PACIENTE RETORNA PARA AVALIAÇÃO. APLICADO BOTOX 50U.",
        "Doença de Crohn controlada.",
        "Retorno na Sexta, antes do Natal.",
    ],
)
def test_it_leaves_capitalised_words_that_are_not_names(text):
    assert types(text) == []


# --- Clean clinical text ---------------------------------------------------------------------
@pytest.mark.parametrize(
    "text",
    [
        "Aplicado 50 U de Botox em glabela em 12/03/2025, lote 23A145.",
        "Dipirona 500 mg de 6/6h; Ácido Hialurônico 2,5 ml.",
        "Valor R$ 1.500,00 em 3x de R$ 500,00.",
        "Lote 2310456, validade 08/2026; LOT 1234-5678.",
        "PA 120x80 mmHg, IMC 24,5, peso 68 kg.",
        "Código do produto 7891234567895.",
    ],
)
def test_it_leaves_doses_prices_dates_and_lots_alone(text):
    assert types(text) == []
