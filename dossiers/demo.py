"""Demo catalogue for `make run`: ten everyday procedures of Hà Nội (province 01).

Agencies of the city (Department of Justice, City Police, Social Security) and of
two wards under the 2025 two-level map (Phường Ba Đình 00004, Phường Hoàn Kiếm
00070). Forms and papers follow the national portal's descriptions, simplified.
The loader is idempotent: it updates rows in place by code.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction

from dossiers.catalogue import procedure_changed, refresh_search_text
from dossiers.form_spec import check_spec
from dossiers.models import Agency, Procedure, RequiredDocument

PROVINCE = "01"  # Thành phố Hà Nội

AGENCIES: list[dict[str, Any]] = [
    {
        "code": "HN-STP",
        "name": "Sở Tư pháp thành phố Hà Nội",
        "name_en": "Hanoi Department of Justice",
        "level": Agency.Level.PROVINCE,
        "commune_code": "",
    },
    {
        "code": "HN-CA",
        "name": "Công an thành phố Hà Nội",
        "name_en": "Hanoi City Police",
        "level": Agency.Level.PROVINCE,
        "commune_code": "",
    },
    {
        "code": "HN-BHXH",
        "name": "Bảo hiểm xã hội thành phố Hà Nội",
        "name_en": "Hanoi Social Security",
        "level": Agency.Level.PROVINCE,
        "commune_code": "",
    },
    {
        "code": "HN-BADINH",
        "name": "UBND phường Ba Đình",
        "name_en": "Ba Dinh Ward People's Committee",
        "level": Agency.Level.COMMUNE,
        "commune_code": "00004",
    },
    {
        "code": "HN-BADINH-CA",
        "name": "Công an phường Ba Đình",
        "name_en": "Ba Dinh Ward Police",
        "level": Agency.Level.COMMUNE,
        "commune_code": "00004",
    },
    {
        "code": "HN-HOANKIEM",
        "name": "UBND phường Hoàn Kiếm",
        "name_en": "Hoan Kiem Ward People's Committee",
        "level": Agency.Level.COMMUNE,
        "commune_code": "00070",
    },
]


def field(name: str, kind: str, label: str, label_en: str, **options: Any) -> dict[str, Any]:
    return {"name": name, "type": kind, "label": label, "label_en": label_en, **options}


def choice(value: str, label: str, label_en: str) -> dict[str, str]:
    return {"value": value, "label": label, "label_en": label_en}


def doc(
    code: str,
    name: str,
    name_en: str,
    *,
    mandatory: bool = True,
    kinds: tuple[str, ...] = ("photo", "pdf"),
    min_files: int = 1,
    max_files: int = 4,
    guidance: str = "",
    guidance_en: str = "",
) -> dict[str, Any]:
    return {
        "code": code,
        "name": name,
        "name_en": name_en,
        "mandatory": mandatory,
        "accepted_kinds": list(kinds),
        "min_files": min_files,
        "max_files": max_files,
        "guidance": guidance,
        "guidance_en": guidance_en,
    }


# Fields shared by most forms: who applies.
APPLICANT = [
    field(
        "applicant_name",
        "text",
        "Họ, chữ đệm, tên người yêu cầu",
        "Applicant's full name",
        required=True,
        max_length=100,
    ),
    field(
        "applicant_citizen_id",
        "citizen_id",
        "Số định danh cá nhân (CCCD)",
        "Personal identification number",
        required=True,
    ),
    field("applicant_phone", "phone", "Số điện thoại di động", "Mobile number", required=True),
]
RELATIONSHIP = [
    choice("father", "Cha", "Father"),
    choice("mother", "Mẹ", "Mother"),
    choice("grandparent", "Ông/bà", "Grandparent"),
    choice("other", "Người thân khác", "Other relative"),
]
GENDER = [choice("male", "Nam", "Male"), choice("female", "Nữ", "Female")]
PLEDGE = field(
    "pledge",
    "checkbox",
    "Tôi cam đoan những nội dung khai trên đây là đúng sự thật và chịu trách nhiệm trước pháp luật",
    "I declare that the information above is true and I am responsible before the law",
    required=True,
)
ID_CARD = doc(
    "id-card",
    "Ảnh chụp hai mặt thẻ Căn cước/CCCD của người yêu cầu",
    "Photo of both sides of the applicant's citizen ID card",
    kinds=("photo",),
    max_files=2,
    guidance="Chụp rõ nét, đủ bốn góc, không lóa.",
    guidance_en="Sharp, all four corners visible, no glare.",
)

PROCEDURES: list[dict[str, Any]] = [
    {
        "code": "1.001193",
        "agency": "HN-BADINH",
        "name": "Đăng ký khai sinh",
        "name_en": "Birth registration",
        "field": "Hộ tịch",
        "field_en": "Civil status",
        "service_level": Procedure.ServiceLevel.WHOLE,
        "processing_time": 8,
        "processing_unit": Procedure.TimeUnit.WORKING_HOURS,
        "fee_amount": 0,
        "postal_return_allowed": True,
        "electronic_result": True,
        "description": "Đăng ký khai sinh cho trẻ em sinh ra tại Việt Nam; kết quả là Giấy khai "
        "sinh (bản chính) và bản sao trích lục khai sinh.",
        "description_en": "Registers the birth of a child born in Vietnam; the result is the "
        "birth certificate and a certified extract.",
        "form": [
            *APPLICANT,
            field(
                "relationship",
                "choice",
                "Quan hệ với trẻ",
                "Relationship to the child",
                required=True,
                choices=RELATIONSHIP,
            ),
            field(
                "child_name",
                "text",
                "Họ, chữ đệm, tên của trẻ",
                "Child's full name",
                required=True,
                max_length=100,
            ),
            field("child_gender", "choice", "Giới tính", "Sex", required=True, choices=GENDER),
            field(
                "child_birth_date",
                "date",
                "Ngày, tháng, năm sinh",
                "Date of birth",
                required=True,
                max="today",
            ),
            field(
                "birth_place",
                "text",
                "Nơi sinh (cơ sở y tế hoặc địa chỉ)",
                "Place of birth (hospital or address)",
                required=True,
                max_length=255,
            ),
            field("ethnicity", "text", "Dân tộc", "Ethnicity", required=True, max_length=50),
            field(
                "mother_name",
                "text",
                "Họ, chữ đệm, tên người mẹ",
                "Mother's full name",
                required=True,
                max_length=100,
            ),
            field(
                "mother_citizen_id",
                "citizen_id",
                "Số định danh cá nhân của mẹ",
                "Mother's identification number",
                required=True,
            ),
            field(
                "father_name",
                "text",
                "Họ, chữ đệm, tên người cha",
                "Father's full name",
                max_length=100,
            ),
            field(
                "father_citizen_id",
                "citizen_id",
                "Số định danh cá nhân của cha",
                "Father's identification number",
            ),
            field(
                "copies",
                "number",
                "Số bản sao trích lục yêu cầu",
                "Extract copies requested",
                integer=True,
                min=0,
                max=10,
            ),
            PLEDGE,
        ],
        "documents": [
            doc(
                "birth-certificate",
                "Giấy chứng sinh",
                "Medical birth certificate (giấy chứng sinh)",
                max_files=2,
                guidance="Do cơ sở y tế nơi trẻ sinh ra cấp.",
                guidance_en="Issued by the hospital where the child was born.",
            ),
            doc(
                "marriage-certificate",
                "Giấy chứng nhận kết hôn của cha mẹ",
                "Parents' marriage certificate",
                mandatory=False,
                max_files=2,
            ),
        ],
    },
    {
        "code": "1.004194",
        "agency": "HN-BADINH-CA",
        "name": "Đăng ký thường trú",
        "name_en": "Permanent residence registration",
        "field": "Đăng ký, quản lý cư trú",
        "field_en": "Residence",
        "service_level": Procedure.ServiceLevel.WHOLE,
        "processing_time": 7,
        "processing_unit": Procedure.TimeUnit.WORKING_DAYS,
        "fee_amount": 10000,
        "postal_return_allowed": False,
        "electronic_result": True,
        "description": "Đăng ký thường trú tại chỗ ở hợp pháp thuộc quyền sở hữu của mình hoặc "
        "được chủ hộ, chủ sở hữu đồng ý (Luật Cư trú 2020).",
        "description_en": "Registers permanent residence at a lawful home that you own or whose "
        "owner agrees (Law on Residence 2020).",
        "form": [
            *APPLICANT,
            field(
                "new_address_commune",
                "address",
                "Phường, xã nơi đăng ký thường trú",
                "Ward or commune of the new residence",
                required=True,
            ),
            field(
                "new_address_street",
                "text",
                "Số nhà, đường phố, tổ dân phố",
                "House number, street, neighbourhood",
                required=True,
                max_length=255,
            ),
            field(
                "basis",
                "choice",
                "Căn cứ đăng ký",
                "Basis of registration",
                required=True,
                choices=[
                    choice("owner", "Chỗ ở hợp pháp thuộc sở hữu của mình", "Home I own"),
                    choice("family", "Về ở với vợ/chồng, cha mẹ, con", "Joining close family"),
                    choice("rent", "Thuê, mượn, ở nhờ", "Renting or borrowing"),
                ],
            ),
            field(
                "household_head_name", "text", "Họ tên chủ hộ", "Head of household", max_length=100
            ),
            field(
                "household_head_relationship",
                "text",
                "Quan hệ với chủ hộ",
                "Relationship to the head of household",
                max_length=50,
            ),
            PLEDGE,
        ],
        "documents": [
            doc(
                "ct01",
                "Tờ khai thay đổi thông tin cư trú (Mẫu CT01)",
                "Residence information change form (form CT01)",
                max_files=3,
            ),
            doc(
                "home-proof",
                "Giấy tờ chứng minh chỗ ở hợp pháp",
                "Proof of lawful home (title, lease or consent)",
                max_files=6,
            ),
        ],
    },
    {
        "code": "2.000488",
        "agency": "HN-STP",
        "name": "Cấp Phiếu lý lịch tư pháp cho công dân Việt Nam",
        "name_en": "Criminal record certificate for Vietnamese citizens",
        "field": "Lý lịch tư pháp",
        "field_en": "Judicial records",
        "service_level": Procedure.ServiceLevel.WHOLE,
        "processing_time": 10,
        "processing_unit": Procedure.TimeUnit.WORKING_DAYS,
        "fee_amount": 200000,
        "postal_return_allowed": True,
        "electronic_result": True,
        "description": "Phiếu lý lịch tư pháp số 1 (cấp cho cá nhân) hoặc số 2 (cấp theo yêu cầu "
        "của cơ quan tiến hành tố tụng hoặc để cá nhân biết nội dung về lý lịch tư pháp của mình).",
        "description_en": "Criminal record certificate no. 1 (for the individual) or no. 2 (full "
        "record, for the person themselves or the courts).",
        "form": [
            *APPLICANT,
            field("birth_date", "date", "Ngày sinh", "Date of birth", required=True, max="today"),
            field("gender", "choice", "Giới tính", "Sex", required=True, choices=GENDER),
            field(
                "birth_place", "text", "Nơi sinh", "Place of birth", required=True, max_length=255
            ),
            field(
                "residence_commune",
                "address",
                "Nơi thường trú (phường, xã)",
                "Permanent residence (ward or commune)",
                required=True,
            ),
            field("father_name", "text", "Họ tên cha", "Father's full name", max_length=100),
            field("mother_name", "text", "Họ tên mẹ", "Mother's full name", max_length=100),
            field(
                "certificate_type",
                "choice",
                "Loại phiếu",
                "Certificate",
                required=True,
                choices=[
                    choice("1", "Phiếu số 1", "Certificate no. 1"),
                    choice("2", "Phiếu số 2", "Certificate no. 2"),
                ],
            ),
            field(
                "copies",
                "number",
                "Số lượng phiếu",
                "Number of copies",
                required=True,
                integer=True,
                min=1,
                max=10,
            ),
            field("purpose", "text", "Mục đích sử dụng", "Purpose", required=True, max_length=255),
            field("email", "email", "Thư điện tử", "Email"),
            PLEDGE,
        ],
        "documents": [ID_CARD],
    },
    {
        "code": "1.002804",
        "agency": "HN-CA",
        "name": "Cấp đổi giấy phép lái xe",
        "name_en": "Driving licence renewal",
        "field": "Đường bộ",
        "field_en": "Road traffic",
        "service_level": Procedure.ServiceLevel.WHOLE,
        "processing_time": 5,
        "processing_unit": Procedure.TimeUnit.WORKING_DAYS,
        "fee_amount": 135000,
        "postal_return_allowed": True,
        "electronic_result": False,
        "description": "Đổi giấy phép lái xe hết hạn, hư hỏng hoặc cấp theo mẫu cũ.",
        "description_en": "Renews an expired, damaged or old-model driving licence.",
        "form": [
            *APPLICANT,
            field("birth_date", "date", "Ngày sinh", "Date of birth", required=True, max="today"),
            field(
                "licence_number",
                "text",
                "Số giấy phép lái xe",
                "Licence number",
                required=True,
                min_length=12,
                max_length=12,
            ),
            field(
                "licence_class",
                "choice",
                "Hạng",
                "Class",
                required=True,
                choices=[
                    choice(c, c, c)
                    for c in ("A1", "A", "B1", "B", "C1", "C", "D1", "D2", "D", "BE")
                ],
            ),
            field("expiry_date", "date", "Ngày hết hạn", "Expiry date", required=True),
            field(
                "reason",
                "choice",
                "Lý do đổi",
                "Reason",
                required=True,
                choices=[
                    choice("expired", "Hết hạn", "Expired"),
                    choice("damaged", "Hư hỏng", "Damaged"),
                    choice("old_model", "Mẫu cũ", "Old model"),
                ],
            ),
            PLEDGE,
        ],
        "documents": [
            doc(
                "health-certificate",
                "Giấy khám sức khỏe của người lái xe",
                "Driver's medical certificate",
                max_files=2,
                guidance="Do cơ sở y tế có thẩm quyền cấp, còn thời hạn.",
                guidance_en="From an authorised clinic, still valid.",
            ),
            doc(
                "licence",
                "Ảnh giấy phép lái xe cũ (hai mặt)",
                "Photo of the old licence (both sides)",
                kinds=("photo",),
                max_files=2,
            ),
            doc(
                "portrait",
                "Ảnh chân dung nền trắng",
                "Portrait photo on a white background",
                kinds=("photo",),
                max_files=1,
            ),
        ],
    },
    {
        "code": "2.000720",
        "agency": "HN-BADINH",
        "name": "Đăng ký thành lập hộ kinh doanh",
        "name_en": "Household business registration",
        "field": "Thành lập và hoạt động của hộ kinh doanh",
        "field_en": "Household businesses",
        "service_level": Procedure.ServiceLevel.WHOLE,
        "processing_time": 3,
        "processing_unit": Procedure.TimeUnit.WORKING_DAYS,
        "fee_amount": 100000,
        "postal_return_allowed": True,
        "electronic_result": True,
        "description": "Cấp Giấy chứng nhận đăng ký hộ kinh doanh.",
        "description_en": "Issues the household business registration certificate.",
        "form": [
            *APPLICANT,
            field(
                "business_name",
                "text",
                "Tên hộ kinh doanh",
                "Business name",
                required=True,
                max_length=200,
            ),
            field(
                "business_address_commune",
                "address",
                "Phường, xã nơi đặt địa điểm kinh doanh",
                "Ward or commune of the business",
                required=True,
            ),
            field(
                "business_address_street",
                "text",
                "Số nhà, đường phố",
                "Street address",
                required=True,
                max_length=255,
            ),
            field(
                "business_lines",
                "text",
                "Ngành, nghề kinh doanh",
                "Lines of business",
                required=True,
                max_length=1000,
            ),
            field(
                "capital",
                "number",
                "Vốn kinh doanh (đồng)",
                "Capital (VND)",
                required=True,
                integer=True,
                min=0,
            ),
            field(
                "employees",
                "number",
                "Số lượng lao động",
                "Number of employees",
                integer=True,
                min=0,
                max=1000,
            ),
            field("email", "email", "Thư điện tử", "Email"),
            PLEDGE,
        ],
        "documents": [
            ID_CARD,
            doc(
                "premises",
                "Bản sao hợp đồng thuê hoặc giấy tờ về địa điểm kinh doanh",
                "Lease or title of the business premises",
                mandatory=False,
                max_files=6,
            ),
        ],
    },
    {
        "code": "1.004873",
        "agency": "HN-BADINH",
        "name": "Cấp Giấy xác nhận tình trạng hôn nhân",
        "name_en": "Marriage status confirmation",
        "field": "Hộ tịch",
        "field_en": "Civil status",
        "service_level": Procedure.ServiceLevel.WHOLE,
        "processing_time": 3,
        "processing_unit": Procedure.TimeUnit.WORKING_DAYS,
        "fee_amount": 15000,
        "postal_return_allowed": True,
        "electronic_result": True,
        "description": "Xác nhận tình trạng hôn nhân để đăng ký kết hôn hoặc sử dụng vào mục "
        "đích khác.",
        "description_en": "Confirms your marital status, to marry or for another purpose.",
        "form": [
            *APPLICANT,
            field("birth_date", "date", "Ngày sinh", "Date of birth", required=True, max="today"),
            field(
                "residence_commune",
                "address",
                "Nơi cư trú (phường, xã)",
                "Residence (ward or commune)",
                required=True,
            ),
            field(
                "marital_status",
                "choice",
                "Tình trạng hôn nhân",
                "Marital status",
                required=True,
                choices=[
                    choice("single", "Chưa đăng ký kết hôn với ai", "Never married"),
                    choice("divorced", "Đã ly hôn", "Divorced"),
                    choice("widowed", "Vợ/chồng đã chết", "Widowed"),
                    choice("married", "Đang có vợ/chồng", "Married"),
                ],
            ),
            field(
                "purpose",
                "choice",
                "Mục đích sử dụng",
                "Purpose",
                required=True,
                choices=[
                    choice("marriage", "Đăng ký kết hôn", "To marry"),
                    choice("other", "Mục đích khác", "Other purpose"),
                ],
            ),
            field(
                "partner_name",
                "text",
                "Họ tên người dự định kết hôn",
                "Name of the intended spouse",
                max_length=100,
            ),
            PLEDGE,
        ],
        "documents": [
            doc(
                "divorce-paper",
                "Bản án, quyết định ly hôn (nếu đã ly hôn)",
                "Divorce judgment (if divorced)",
                mandatory=False,
                max_files=4,
            ),
        ],
    },
    {
        "code": "2.000815",
        "agency": "HN-BADINH",
        "name": "Chứng thực bản sao từ bản chính giấy tờ, văn bản",
        "name_en": "Certified copies of original papers",
        "field": "Chứng thực",
        "field_en": "Certification",
        "service_level": Procedure.ServiceLevel.PARTIAL,
        "processing_time": 4,
        "processing_unit": Procedure.TimeUnit.WORKING_HOURS,
        "fee_amount": 2000,
        "fee_timing": Procedure.FeeTiming.AFTER,
        "postal_return_allowed": False,
        "electronic_result": True,
        "description": "Chứng thực bản sao điện tử từ bản chính; 2.000 đồng/trang từ trang thứ "
        "ba trở đi 1.000 đồng/trang, tối đa 200.000 đồng/bản. Mang bản chính đến đối chiếu.",
        "description_en": "Certifies copies of originals: 2,000 VND a page, 1,000 VND from the "
        "third page, at most 200,000 VND a copy. Bring the original to be compared.",
        "form": [
            *APPLICANT,
            field(
                "document_title",
                "text",
                "Tên giấy tờ cần chứng thực",
                "Title of the paper to certify",
                required=True,
                max_length=255,
            ),
            field(
                "pages", "number", "Số trang", "Pages", required=True, integer=True, min=1, max=200
            ),
            field(
                "copies",
                "number",
                "Số bản sao",
                "Copies",
                required=True,
                integer=True,
                min=1,
                max=20,
            ),
        ],
        "documents": [
            doc(
                "original",
                "Bản chụp giấy tờ cần chứng thực",
                "Scan of the paper to certify",
                max_files=20,
                kinds=("pdf", "photo"),
            ),
        ],
    },
    {
        "code": "1.011465",
        "agency": "HN-BHXH",
        "name": "Cấp thẻ bảo hiểm y tế cho trẻ em dưới 6 tuổi",
        "name_en": "Health insurance card for a child under 6",
        "field": "Thu bảo hiểm xã hội, bảo hiểm y tế",
        "field_en": "Social and health insurance",
        "service_level": Procedure.ServiceLevel.WHOLE,
        "processing_time": 3,
        "processing_unit": Procedure.TimeUnit.WORKING_DAYS,
        "fee_amount": 0,
        "postal_return_allowed": True,
        "electronic_result": True,
        "description": "Trẻ em dưới 6 tuổi được Nhà nước đóng bảo hiểm y tế; thẻ có giá trị đến "
        "ngày trẻ đủ 72 tháng tuổi.",
        "description_en": "The State pays health insurance for children under 6; the card is "
        "valid until the child is 72 months old.",
        "form": [
            *APPLICANT,
            field(
                "relationship",
                "choice",
                "Quan hệ với trẻ",
                "Relationship to the child",
                required=True,
                choices=RELATIONSHIP,
            ),
            field(
                "child_name",
                "text",
                "Họ, chữ đệm, tên của trẻ",
                "Child's full name",
                required=True,
                max_length=100,
            ),
            field(
                "child_id",
                "text",
                "Số định danh cá nhân của trẻ",
                "Child's identification number",
                required=True,
                min_length=12,
                max_length=12,
            ),
            field(
                "child_birth_date",
                "date",
                "Ngày sinh của trẻ",
                "Child's date of birth",
                required=True,
                max="today",
            ),
            field(
                "residence_commune",
                "address",
                "Nơi cư trú (phường, xã)",
                "Residence (ward or commune)",
                required=True,
            ),
            field(
                "hospital",
                "text",
                "Nơi đăng ký khám chữa bệnh ban đầu",
                "Preferred primary-care clinic",
                required=True,
                max_length=255,
            ),
        ],
        "documents": [
            doc(
                "tk1-ts",
                "Tờ khai tham gia, điều chỉnh thông tin BHXH, BHYT (Mẫu TK1-TS)",
                "Insurance registration form (TK1-TS)",
                max_files=2,
            ),
        ],
    },
    {
        "code": "1.009994",
        "agency": "HN-HOANKIEM",
        "name": "Cấp giấy phép xây dựng đối với nhà ở riêng lẻ",
        "name_en": "Construction permit for a detached house",
        "field": "Hoạt động xây dựng",
        "field_en": "Construction",
        "service_level": Procedure.ServiceLevel.PARTIAL,
        "processing_time": 15,
        "processing_unit": Procedure.TimeUnit.CALENDAR_DAYS,
        "fee_amount": 75000,
        "postal_return_allowed": True,
        "electronic_result": False,
        "description": "Giấy phép xây dựng mới nhà ở riêng lẻ trong đô thị.",
        "description_en": "Permit to build a new detached house in an urban area.",
        "form": [
            *APPLICANT,
            field(
                "site_commune",
                "address",
                "Phường, xã nơi xây dựng",
                "Ward of the site",
                required=True,
            ),
            field(
                "site_street",
                "text",
                "Địa chỉ lô đất",
                "Plot address",
                required=True,
                max_length=255,
            ),
            field(
                "land_certificate_number",
                "text",
                "Số Giấy chứng nhận quyền sử dụng đất",
                "Land use right certificate number",
                required=True,
                max_length=50,
            ),
            field(
                "plot_area",
                "number",
                "Diện tích lô đất (m²)",
                "Plot area (m²)",
                required=True,
                min=1,
                max=10000,
            ),
            field(
                "floors", "number", "Số tầng", "Floors", required=True, integer=True, min=1, max=7
            ),
            field(
                "floor_area",
                "number",
                "Tổng diện tích sàn (m²)",
                "Total floor area (m²)",
                required=True,
                min=1,
            ),
            field(
                "start_date", "date", "Ngày dự kiến khởi công", "Planned start date", min="today"
            ),
            PLEDGE,
        ],
        "documents": [
            doc(
                "land-certificate",
                "Giấy chứng nhận quyền sử dụng đất",
                "Land use right certificate",
                max_files=4,
            ),
            doc(
                "drawings",
                "Bản vẽ thiết kế (mặt bằng, mặt cắt, mặt đứng, móng)",
                "Design drawings (plans, sections, elevations, foundations)",
                kinds=("pdf",),
                max_files=10,
                min_files=2,
            ),
            doc(
                "neighbour-commitment",
                "Cam kết bảo đảm an toàn công trình liền kề",
                "Commitment on the safety of adjoining buildings",
                mandatory=False,
                max_files=2,
            ),
        ],
    },
    {
        "code": "1.000894",
        "agency": "HN-HOANKIEM",
        "name": "Đăng ký kết hôn",
        "name_en": "Marriage registration",
        "field": "Hộ tịch",
        "field_en": "Civil status",
        "service_level": Procedure.ServiceLevel.PARTIAL,
        "processing_time": 8,
        "processing_unit": Procedure.TimeUnit.WORKING_HOURS,
        "fee_amount": 0,
        "postal_return_allowed": False,
        "electronic_result": False,
        "description": "Hai bên nam, nữ có mặt khi nhận Giấy chứng nhận kết hôn.",
        "description_en": "Both partners must be present to receive the marriage certificate.",
        "form": [
            *APPLICANT,
            field(
                "partner_name",
                "text",
                "Họ, chữ đệm, tên bên kia",
                "Partner's full name",
                required=True,
                max_length=100,
            ),
            field(
                "partner_citizen_id",
                "citizen_id",
                "Số định danh cá nhân của bên kia",
                "Partner's identification number",
                required=True,
            ),
            field(
                "partner_birth_date",
                "date",
                "Ngày sinh của bên kia",
                "Partner's date of birth",
                required=True,
                max="today",
            ),
            PLEDGE,
        ],
        "documents": [
            doc(
                "marriage-status",
                "Giấy xác nhận tình trạng hôn nhân (nếu cư trú nơi khác)",
                "Marital status confirmation (if living elsewhere)",
                mandatory=False,
            ),
        ],
    },
]


def load() -> str:
    if settings.PRODUCTION:
        raise ImproperlyConfigured("The demo catalogue is never loaded in production.")
    created = 0
    with transaction.atomic():
        agencies: dict[str, Agency] = {}
        for data in AGENCIES:
            agencies[data["code"]], _ = Agency.objects.update_or_create(
                code=data["code"],
                defaults={**data, "province_code": PROVINCE, "is_active": True},
            )
        for data in PROCEDURES:
            problems = check_spec(data["form"])
            if problems:
                raise ImproperlyConfigured(f"{data['code']}: {'; '.join(problems)}")
            values = {
                key: value
                for key, value in data.items()
                if key not in {"code", "agency", "form", "documents"}
            }
            procedure, was_created = Procedure.objects.update_or_create(
                code=data["code"],
                defaults={
                    **values,
                    "agency": agencies[data["agency"]],
                    "form_spec": data["form"],
                    "is_active": True,
                },
            )
            created += was_created
            codes = []
            for position, document in enumerate(data["documents"]):
                RequiredDocument.objects.update_or_create(
                    procedure=procedure,
                    code=document["code"],
                    defaults={**document, "position": position},
                )
                codes.append(document["code"])
            procedure.documents.exclude(code__in=codes).delete()
            refresh_search_text(procedure)
            procedure_changed(procedure)
    return f"{len(AGENCIES)} agencies, {len(PROCEDURES)} procedures ({created} new)"
